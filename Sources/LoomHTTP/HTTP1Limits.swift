/// Size limits applied while parsing HTTP/1.x messages.
///
/// Every limit bounds memory or CPU an unauthenticated peer can make us spend; the errors
/// they raise carry the status a server answers with (414, 431, 413).
public struct HTTP1Limits: Sendable, Equatable {
    /// Largest head (start line, fields, final CRLF) accepted; beyond it: 431.
    public var maxHeadBytes: Int
    /// Longest request-target accepted; beyond it: 414, detected before the head completes.
    public var maxURIBytes: Int
    /// Most header (or trailer) fields accepted; beyond it: 431.
    public var maxFields: Int
    /// Largest body accepted, or nil for no limit; beyond it: 413.
    public var maxBodyBytes: Int?
    /// Longest chunk-size line (size plus extensions) accepted; beyond it: 400.
    public var maxChunkLineBytes: Int

    /// Creates limits; the defaults suit a public-facing proxy.
    ///
    /// Head offsets are stored as `Int32`, so `maxHeadBytes` is clamped to `Int32.max`.
    public init(
        maxHeadBytes: Int = 65536,
        maxURIBytes: Int = 8192,
        maxFields: Int = 128,
        maxBodyBytes: Int? = nil,
        maxChunkLineBytes: Int = 4096
    ) {
        self.maxHeadBytes = max(0, min(maxHeadBytes, Int(Int32.max)))
        self.maxURIBytes = max(0, maxURIBytes)
        self.maxFields = max(0, maxFields)
        self.maxBodyBytes = maxBodyBytes.map { max(0, $0) }
        self.maxChunkLineBytes = max(1, maxChunkLineBytes)
    }
}
