/// Process-wide settings: threads, default timeouts, limits, forwarding and logging.
public struct ServerSettings: Sendable, Equatable {
    /// Event-loop threads; `nil` means one per core.
    public var workerThreads: Int?
    public var timeouts: Timeouts
    public var limits: Limits
    public var forwarding: ForwardingSettings
    public var logging: LoggingSettings
    /// How long graceful shutdown waits for in-flight requests before closing them.
    public var shutdownTimeout: Duration
    /// The token WarpDrive's `require_auth` routes expect in `X-Admin-Token` (`admin_token`;
    /// write it as `${ADMIN_TOKEN}` to keep it out of the file).
    public var adminToken: String?
    /// Reload when the configuration file changes (`watch_config`, default on; SIGHUP
    /// reloads either way).
    public var watchConfig = true
    /// How often the watch looks at the file (`watch_interval`, 100ms–1h, default 1s); a
    /// change is applied once it has been seen on two looks in a row.
    public var watchInterval: Duration = .seconds(1)

    public init(
        workerThreads: Int? = nil,
        timeouts: Timeouts = Timeouts(),
        limits: Limits = Limits(),
        forwarding: ForwardingSettings = ForwardingSettings(),
        logging: LoggingSettings = LoggingSettings(),
        shutdownTimeout: Duration = .seconds(30)
    ) {
        self.workerThreads = workerThreads
        self.timeouts = timeouts
        self.limits = limits
        self.forwarding = forwarding
        self.logging = logging
        self.shutdownTimeout = shutdownTimeout
    }
}

/// Global timeout defaults. Routes and upstreams override them with `TimeoutOverrides`.
public struct Timeouts: Sendable, Equatable {
    /// Establishing a TCP or unix-socket connection to an endpoint (→ 504 when exceeded).
    public var connect: Duration
    /// From the request being sent upstream to the response head arriving (→ 504).
    public var responseHeader: Duration
    /// No bytes in either direction on an active exchange, and the keep-alive idle time of a
    /// downstream connection between requests.
    public var idle: Duration
    /// Whole request, first byte in to last byte out; `nil` means no limit (streams may be long).
    public var request: Duration?
    /// Reading a downstream request head (→ 408 when exceeded).
    public var requestHeader: Duration
    /// No bytes in either direction on an upgraded (WebSocket) connection. Longer than
    /// `idle` by default, as HAProxy's `timeout tunnel` is set: a WebSocket often stays
    /// quiet between messages, and its pings come every 30 s or more.
    public var tunnel: Duration

    public init(
        connect: Duration = .seconds(5),
        responseHeader: Duration = .seconds(60),
        idle: Duration = .seconds(60),
        request: Duration? = nil,
        requestHeader: Duration = .seconds(10),
        tunnel: Duration = .seconds(3600)
    ) {
        self.connect = connect
        self.responseHeader = responseHeader
        self.idle = idle
        self.request = request
        self.requestHeader = requestHeader
        self.tunnel = tunnel
    }

    /// These defaults with any overrides applied (route overrides win over upstream ones:
    /// call `applying(upstream).applying(route)`). An override `request` of `.zero` lifts
    /// the whole-request limit (`request` becomes nil); nil overrides inherit.
    public func applying(_ overrides: TimeoutOverrides) -> Timeouts {
        var result = self
        if let v = overrides.connect { result.connect = v }
        if let v = overrides.responseHeader { result.responseHeader = v }
        if let v = overrides.idle { result.idle = v }
        if let v = overrides.tunnel { result.tunnel = v }
        if let v = overrides.request { result.request = v == .zero ? nil : v }
        return result
    }
}

/// Per-upstream or per-route timeout overrides; `nil` keeps the inherited value.
///
/// `connect`, `responseHeader`, `idle` and `tunnel` are greater than zero when set (the decoders refuse
/// 0: those limits cannot be switched off). `request` has three states, because a route or
/// upstream must be able to opt out of a global whole-request limit (long streams, uploads):
public struct TimeoutOverrides: Sendable, Equatable {
    public var connect: Duration?
    public var responseHeader: Duration?
    public var idle: Duration?
    public var tunnel: Duration?
    /// - `nil`: inherit (the upstream's override, else `server.timeouts.request`);
    /// - `.zero`: no limit, whatever is inherited (configuration `request: 0` /
    ///   `request_timeout_secs = 0`);
    /// - a positive duration: that limit.
    ///
    /// Never negative. Read it through `Timeouts.applying(_:)`, which maps `.zero` to a nil
    /// `Timeouts.request` (no limit), rather than directly.
    public var request: Duration?

    public init(connect: Duration? = nil, responseHeader: Duration? = nil, idle: Duration? = nil, request: Duration? = nil, tunnel: Duration? = nil) {
        self.connect = connect
        self.responseHeader = responseHeader
        self.idle = idle
        self.request = request
        self.tunnel = tunnel
    }

    public var isEmpty: Bool { connect == nil && responseHeader == nil && idle == nil && request == nil && tunnel == nil }
}

/// Size limits on downstream requests.
public struct Limits: Sendable, Equatable {
    /// Request line plus all header fields (→ 431).
    public var maxHeaderBytes: Int
    /// Request-target length (→ 414).
    public var maxURIBytes: Int
    /// Request body; `nil` means unlimited (→ 413 when exceeded).
    public var maxBodyBytes: Int?
    /// Streams an HTTP/2 client may have open at once on one connection (nginx's
    /// `http2_max_concurrent_streams` default); a stream over it is refused (RST_STREAM).
    public var maxConcurrentStreams: Int

    /// Each open stream holds a request's state and up to a 64 KiB window of its body.
    public static let maxConcurrentStreamsCeiling = 10_000

    public init(maxHeaderBytes: Int = 64 * 1024, maxURIBytes: Int = 8 * 1024, maxBodyBytes: Int? = nil, maxConcurrentStreams: Int = 128) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxURIBytes = maxURIBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxConcurrentStreams = maxConcurrentStreams
    }
}

/// What the proxy tells the upstream about the client.
public struct ForwardingSettings: Sendable, Equatable {
    /// Add `X-Forwarded-For`, `-Proto`, `-Host`, `-Port` (WarpDrive `middleware.forward_headers`).
    public var xForwarded: Bool
    /// Also send an RFC 7239 `Forwarded` header.
    public var forwarded: Bool
    /// Add a `Via: 1.1 loom` header in both directions.
    public var via: Bool
    /// Clients whose own `X-Forwarded-*` / `Forwarded` values are kept and extended; from
    /// everyone else they are replaced.
    public var trustedProxies: [AddressBlock]
    /// Header carrying the request id upstream and back to the client.
    public var requestIDHeader: String
    /// Keep the client's `Host` header (true) or send the endpoint's `host:port` (false).
    public var preserveHost: Bool

    public init(
        xForwarded: Bool = true,
        forwarded: Bool = false,
        via: Bool = true,
        trustedProxies: [AddressBlock] = [],
        requestIDHeader: String = "X-Request-ID",
        preserveHost: Bool = true
    ) {
        self.xForwarded = xForwarded
        self.forwarded = forwarded
        self.via = via
        self.trustedProxies = trustedProxies
        self.requestIDHeader = requestIDHeader
        self.preserveHost = preserveHost
    }
}

/// Log output settings. Command-line flags override the file.
public struct LoggingSettings: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable { case json, text }
    public enum Level: String, Sendable, Equatable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    /// One line per request (WarpDrive `middleware.log_requests`).
    public var accessLog: Bool
    public var format: Format
    public var level: Level

    public init(accessLog: Bool = true, format: Format = .json, level: Level = .info) {
        self.accessLog = accessLog
        self.format = format
        self.level = level
    }
}
