/// The protocol loom speaks to an upstream's endpoints: `http1` (HTTP/1.1, the default),
/// `h2` (HTTP/2 over TLS, agreed by ALPN), `h2c` (cleartext HTTP/2 by prior knowledge) and
/// `grpc` (HTTP/2, over TLS when the upstream has `tls`, else cleartext).
public enum UpstreamProtocol: String, Sendable, Equatable, CaseIterable {
    case http1, h2, h2c, grpc

    /// Requests go upstream as streams of one multiplexed HTTP/2 connection per endpoint.
    public var isHTTP2: Bool { self != .http1 }
}

/// TLS to an upstream's endpoints (`tls: true`, or a table). Verification is on unless
/// `verify: false`.
public struct UpstreamTLS: Sendable, Equatable {
    /// Sent as SNI and checked against the certificate; nil: the endpoint's host (a name
    /// or an IP address).
    public var serverName: String?
    /// The CAs the upstream's certificate must chain to (PEM); nil: the system's.
    public var caFile: String?
    /// A client certificate and its key, for upstreams that ask for one.
    public var certFile: String?
    public var keyFile: String?
    public var verify: Bool

    public init(serverName: String? = nil, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, verify: Bool = true) {
        self.serverName = serverName
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.verify = verify
    }
}

/// What the TLS layer finds wrong with an upstream's `tls` (files it cannot load), one
/// message per problem.
public typealias UpstreamTLSCheck = @Sendable (UpstreamTLS) -> [String]
