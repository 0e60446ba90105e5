/// A child's standard output or error as lines for loom's log: bytes in as the pipe gives
/// them, whole lines out (without the `\n`, or `\r\n`). A line longer than `limit` bytes is
/// logged in `limit`-sized pieces, so a child that never writes a newline cannot make loom
/// hold its output without bound.
public struct OutputLines: Sendable {
    public let limit: Int
    private var pending: [UInt8] = []

    public init(limit: Int = 16 * 1024) {
        self.limit = max(1, limit)
    }

    /// The lines `bytes` completes, in order.
    public mutating func read(_ bytes: some Sequence<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                lines.append(take())
            } else {
                pending.append(byte)
                if pending.count == limit { lines.append(take()) }
            }
        }
        return lines
    }

    /// What is left when the pipe closes: the last line, if it had no newline.
    public mutating func finish() -> String? {
        pending.isEmpty ? nil : take()
    }

    private mutating func take() -> String {
        if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
        defer { pending.removeAll(keepingCapacity: true) }
        return String(decoding: pending, as: UTF8.self)
    }
}
