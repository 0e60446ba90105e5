import Foundation
import LoomConfig
import NIOCore
import NIOPosix
import NIOSSL

/// TLS to an upstream's endpoints: a client context built once from its `tls` settings
/// (later snapshots keep it while the settings are unchanged, and with it the pooled
/// connections), and the name each endpoint's certificate is checked against.
///
/// Verification is on by default: the certificate must chain to `ca_file` (else the
/// system's CAs) and name `server_name`, else the endpoint's host (a DNS name, or an IP
/// address checked against the certificate's IP names).
package final class UpstreamTLSClient: Sendable {
    let settings: UpstreamTLS
    let context: NIOSSLContext

    private init(settings: UpstreamTLS, context: NIOSSLContext) {
        self.settings = settings
        self.context = context
    }

    /// `http2`: the upstream speaks HTTP/2, which ALPN offers instead of HTTP/1.1 (a server
    /// that does not agree fails the connection, as RFC 9113 §3.2 has it, rather than be
    /// sent a preface it cannot read).
    static func load(_ settings: UpstreamTLS, http2: Bool = false) throws(ListenerTLS.LoadError) -> UpstreamTLSClient {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = [http2 ? "h2" : "http/1.1"]
        configuration.certificateVerification = settings.verify ? .fullVerification : .none
        var material: [[UInt8]] = []  // not compared: upstream files are read when the settings change
        if let caFile = settings.caFile {
            configuration.trustRoots = .certificates(try ListenerTLS.certificates(caFile, key: "ca_file", into: &material))
        }
        if let certFile = settings.certFile, let keyFile = settings.keyFile {
            let identity = try ListenerTLS.identity(TLSSettings.Certificate(certFile: certFile, keyFile: keyFile), into: &material)
            configuration.certificateChain = identity.chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(identity.key)
        }
        do {
            return UpstreamTLSClient(settings: settings, context: try NIOSSLContext(configuration: configuration))
        } catch {
            throw ListenerTLS.LoadError(description: "the TLS settings were refused: \(error)")
        }
    }

    /// What `load` finds wrong (for `loom validate` and every configuration load).
    static let check: UpstreamTLSCheck = { settings in
        switch Result(catching: { () throws(ListenerTLS.LoadError) in try load(settings) }) {
        case .success: []
        case .failure(let error): [error.description]
        }
    }

    /// The handshake's first handler for a connection to `endpoint`: SNI and the name
    /// checked are `server_name`, else the endpoint's host name (an IP address is sent no
    /// SNI and is checked against the certificate's IP names).
    func handler(for endpoint: Endpoint) throws -> NIOSSLClientHandler {
        var name = settings.serverName
        if name == nil, case .tcp(let host, _) = endpoint, (try? SocketAddress(ipAddress: host, port: 0)) == nil { name = host }
        return try NIOSSLClientHandler(context: context, serverHostname: name)
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds TLS to an upstream connection's pipeline, first, when the upstream has it.
    func addUpstreamTLS(_ tls: UpstreamTLSClient?, for endpoint: Endpoint) throws {
        guard let tls else { return }
        try addHandler(tls.handler(for: endpoint))
    }
}
