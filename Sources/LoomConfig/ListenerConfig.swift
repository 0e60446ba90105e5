/// The protocol a listener speaks. `http` (HTTP/1.1), `https` (TLS; HTTP/2 or HTTP/1.1 by
/// ALPN) and `h2c` (cleartext HTTP/2 by prior knowledge, or HTTP/1.1) run, and `grpc` and
/// `grpcs` are their gRPC names (`h2c` and `https`: gRPC is HTTP/2, and what makes a request
/// a gRPC call is its `content-type`, on any listener); `http2` and `http3` are planned and
/// refused by the validator.
public enum ListenerProtocol: String, Sendable, Equatable, CaseIterable {
    case http, https, h2c, grpc, grpcs, http2, http3

    /// The listener terminates TLS (and needs `tls`).
    public var usesTLS: Bool { self == .https || self == .grpcs }
}

/// One listening socket.
public struct ListenerConfig: Sendable, Equatable {
    public var name: String
    /// Bind host; `nil` for `":8080"` style addresses, meaning all interfaces (`0.0.0.0`).
    public var host: String?
    public var port: Int
    public var `protocol`: ListenerProtocol
    /// TLS termination (an `https` listener's certificates and policy).
    public var tls: TLSSettings?

    public init(name: String, host: String? = nil, port: Int, protocol: ListenerProtocol = .http, tls: TLSSettings? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.protocol = `protocol`
        self.tls = tls
    }
}

/// A listener's TLS settings (Loom `tls:` block).
public struct TLSSettings: Sendable, Equatable {
    public enum ClientAuth: String, Sendable, Equatable, CaseIterable { case none, request, require }

    /// A certificate chain and its private key (PEM files).
    public struct Certificate: Sendable, Equatable {
        public var certFile: String
        public var keyFile: String

        public init(certFile: String, keyFile: String) {
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }

    /// `cert_file`/`key_file`, then each of `certificates`: the first is the default, the
    /// others are chosen by SNI against the names in their certificate.
    public var certificates: [Certificate]
    /// "1.2" or "1.3".
    public var minVersion: String?
    /// The TLS 1.2 cipher suites allowed, in order of preference (OpenSSL names, from
    /// `supportedCiphers`); nil: the TLS library's defaults. TLS 1.3's suites are fixed.
    public var ciphers: [String]?
    public var clientAuth: ClientAuth?
    public var clientCAFile: String?
    /// Request field that carries the verified client certificate's subject upstream (any
    /// value the client sent in it is dropped).
    public var clientIdentityHeader: String?

    public init(
        certificates: [Certificate] = [], minVersion: String? = nil, ciphers: [String]? = nil, clientAuth: ClientAuth? = nil,
        clientCAFile: String? = nil, clientIdentityHeader: String? = nil
    ) {
        self.certificates = certificates
        self.minVersion = minVersion
        self.ciphers = ciphers
        self.clientAuth = clientAuth
        self.clientCAFile = clientCAFile
        self.clientIdentityHeader = clientIdentityHeader
    }

    /// The TLS 1.2 suites `ciphers` may name (BoringSSL's, less PSK and 3DES): a name the
    /// library does not know would stop it, so the configuration is checked against these.
    public static let supportedCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA",
    ]

    /// Whether clients are asked for a certificate.
    public var verifiesClients: Bool { clientAuth == .request || clientAuth == .require }
}

/// What the TLS layer finds wrong with a listener's settings (unreadable or mismatched
/// certificate and key files, a CA file without certificates, a cipher list it rejects),
/// one message per problem; empty when they load.
public typealias TLSCheck = @Sendable (TLSSettings) -> [String]
