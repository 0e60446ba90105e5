/// The protocol a listener speaks. Only `http` (HTTP/1.1) runs today; the rest are planned.
public enum ListenerProtocol: String, Sendable, Equatable, CaseIterable {
    case http, https, http2, grpc, http3
}

/// One listening socket.
public struct ListenerConfig: Sendable, Equatable {
    public var name: String
    /// Bind host; `nil` for `":8080"` style addresses, meaning all interfaces (`0.0.0.0`).
    public var host: String?
    public var port: Int
    public var `protocol`: ListenerProtocol
    /// Planned: TLS termination (parsed and validated, not run yet).
    public var tls: TLSSettings?

    public init(name: String, host: String? = nil, port: Int, protocol: ListenerProtocol = .http, tls: TLSSettings? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.protocol = `protocol`
        self.tls = tls
    }
}

/// Planned TLS settings of a listener (Loom `tls:` block).
public struct TLSSettings: Sendable, Equatable {
    public enum ClientAuth: String, Sendable, Equatable, CaseIterable { case none, request, require }

    public var certFile: String?
    public var keyFile: String?
    /// "1.2" or "1.3".
    public var minVersion: String?
    public var clientAuth: ClientAuth?
    public var clientCAFile: String?

    public init(certFile: String? = nil, keyFile: String? = nil, minVersion: String? = nil, clientAuth: ClientAuth? = nil, clientCAFile: String? = nil) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.minVersion = minVersion
        self.clientAuth = clientAuth
        self.clientCAFile = clientCAFile
    }
}
