import LoomConfig
import NIOCore

/// How a plugin's `proxy_http_call` and `proxy_grpc_*` reach a configured upstream. The data
/// path provides it (LoomProxy's `UpstreamCaller`), so the ABI host needs no HTTP client of
/// its own.
public protocol PluginHTTPCaller: Sendable {
    /// Sends `request` to an endpoint of upstream `upstream`, from `eventLoop`; `completion`
    /// runs on that loop exactly once, with the response or nil (connect failure, timeout,
    /// an invalid or oversized response). False, and no completion, when there is no such
    /// upstream.
    func call(
        _ request: PluginHTTPRequest, upstream: String, timeout: Duration, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (PluginHTTPResponse?) -> Void
    ) -> Bool

    /// Opens a gRPC call to an endpoint of upstream `upstream`, from `eventLoop`; `events`
    /// runs on that loop (see `PluginGRPCEvent` for what and in which order), and may run
    /// before this returns.
    func openGRPC(
        _ request: PluginGRPCRequest, upstream: String, on eventLoop: any EventLoop,
        events: @escaping @Sendable (PluginGRPCEvent) -> Void
    ) -> Result<any PluginGRPCStream, PluginGRPCOpenError>
}

/// A plugin's HTTP call: the pseudo-headers the ABI requires, the other fields, a body and
/// trailers, all already checked (no field can split a head).
public struct PluginHTTPRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var authority: String
    public var headers: [HeaderPair]
    public var body: [UInt8]
    public var trailers: [HeaderPair]

    public init(method: String, path: String, authority: String, headers: [HeaderPair], body: [UInt8], trailers: [HeaderPair]) {
        self.method = method
        self.path = path
        self.authority = authority
        self.headers = headers
        self.body = body
        self.trailers = trailers
    }
}

public struct PluginHTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [HeaderPair]
    public var body: [UInt8]
    public var trailers: [HeaderPair]

    public init(status: Int, headers: [HeaderPair], body: [UInt8], trailers: [HeaderPair] = []) {
        self.status = status
        self.headers = headers
        self.body = body
        self.trailers = trailers
    }

    /// Most body bytes loom keeps of a call's response (past it the call fails).
    public static let bodyLimit = 1024 * 1024
}

/// What an instance needs from the event loop it lives on: a loop to schedule its timers,
/// queue notifications and call completions on, the way to make HTTP calls, and a way to
/// have its runtime start a fresh instance when it fails outside a request (a tick, say).
/// Absent in a trial start (`loom validate`), where those host calls are refused.
struct PluginVMEnvironment {
    var eventLoop: (any EventLoop)?
    var caller: (any PluginHTTPCaller)?
    var restart: (@Sendable () -> Void)?

    static let detached = PluginVMEnvironment()
}
