import LoomConfig

/// A plugin's gRPC call (`proxy_grpc_call`, unary) or stream (`proxy_grpc_stream`), as the
/// data path opens it: `POST /SERVICE/METHOD` with the plugin's initial metadata, already
/// checked (no field can split a head, none is one the host writes).
public struct PluginGRPCRequest: Sendable, Equatable {
    public var service: String
    public var method: String
    public var metadata: [HeaderPair]
    /// The call's deadline (sent as `grpc-timeout` too); nil for a stream, which, as in
    /// Envoy, has none.
    public var timeout: Duration?

    public init(service: String, method: String, metadata: [HeaderPair], timeout: Duration?) {
        self.service = service
        self.method = method
        self.metadata = metadata
        self.timeout = timeout
    }

    /// Most bytes one received message may have (past it the call closes with
    /// RESOURCE_EXHAUSTED), as for an HTTP call's body.
    public static let messageLimit = PluginHTTPResponse.bodyLimit
}

/// What a gRPC call reports, on its event loop, in this order: initial metadata, messages,
/// trailing metadata, then exactly one `close`. A call that fails before its response
/// (no connection, a reset, its deadline) reports only `close`. Nothing follows a `close`,
/// nor a `cancel` by the plugin.
public enum PluginGRPCEvent: Sendable, Equatable {
    case initialMetadata([HeaderPair])
    case message([UInt8])
    case trailingMetadata([HeaderPair])
    /// The gRPC status (0 is OK) and its message.
    case close(status: UInt32, message: String)
}

/// A gRPC call under way, driven from the event loop it was opened on.
public protocol PluginGRPCStream: AnyObject {
    /// Sends one message (the host adds gRPC's length prefix); `endStream` half-closes.
    func send(_ message: [UInt8], endStream: Bool)
    /// Half-closes: no more messages from the plugin; the response still arrives.
    func close()
    /// Resets the call: nothing more is sent or reported.
    func cancel()
}

/// Why a gRPC call could not be opened.
public enum PluginGRPCOpenError: Error, Sendable {
    /// No upstream has the name (`PARSE_FAILURE`, as Envoy answers for an unknown cluster).
    case unknownUpstream
    /// The upstream speaks HTTP/1.1 (`protocol: http1`): gRPC needs HTTP/2.
    case notHTTP2
}
