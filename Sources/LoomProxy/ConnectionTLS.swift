import LoomFilters
import NIOSSL

/// What a TLS connection's requests learn from its handshake: the version and the verified
/// client certificate, read at the first request that asks (the handshake is over before
/// any request bytes arrive) and kept for the connection's later requests.
package final class ConnectionTLS {
    let handler: NIOSSLServerHandler
    /// The listener's `client_identity_header`: carries the client certificate's subject
    /// upstream.
    let identityHeader: String?
    private var read: ConnectionSecurity?

    init(handler: NIOSSLServerHandler, identityHeader: String?) {
        self.handler = handler
        self.identityHeader = identityHeader
    }

    /// What `HeadWriter` writes for `client_identity_header` (nil: not configured).
    var identityField: (header: String, subject: String?)? {
        guard let identityHeader else { return nil }
        return (identityHeader, security.clientCertificate?.subject)
    }

    var security: ConnectionSecurity {
        if let read { return read }
        let security = ConnectionSecurity(
            version: handler.tlsVersion == .tlsv13 ? "TLSv1.3" : "TLSv1.2", clientCertificate: handler.peerCertificate.map(Self.identity))
        read = security
        return security
    }

    /// RFC 4514 short names of the attribute types NIOSSL names.
    private static let attributeNames: [(SSLCertificateNameType, String)] = [
        (.commonName, "CN"), (.organization, "O"), (.organizationalUnit, "OU"), (.country, "C"), (.state, "ST"),
        (.city, "L"), (.emailAddress, "emailAddress"), (.userId, "UID"),
    ]

    private static func identity(_ certificate: NIOSSLCertificate) -> ClientCertificate {
        let attributes = certificate.subjectName.compactMap { name in
            attributeNames.first { $0.0 == name.type }.map { (type: $0.1, value: name.value) }
        }
        var identity = ClientCertificate(subject: ClientCertificate.subject(attributes))
        for name in certificate._subjectAlternativeNames() {
            switch name.nameType {
            case .dnsName: identity.dnsNames.append(String(decoding: name.contents, as: UTF8.self))
            case .uri: identity.uris.append(String(decoding: name.contents, as: UTF8.self))
            default: break
            }
        }
        return identity
    }
}
