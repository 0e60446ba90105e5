/// A TLS connection as filters see it: the scheme's security facts, and the client
/// certificate the handshake verified (only on listeners with `client_auth`).
public struct ConnectionSecurity: Sendable, Equatable {
    /// "TLSv1.2" or "TLSv1.3".
    public var version: String
    public var clientCertificate: ClientCertificate?

    public init(version: String, clientCertificate: ClientCertificate?) {
        self.version = version
        self.clientCertificate = clientCertificate
    }
}

/// The identity in a verified client certificate.
public struct ClientCertificate: Sendable, Equatable {
    /// The subject as an RFC 4514 string, most specific first: `CN=alice,O=Example`.
    public var subject: String
    /// Its subjectAltName DNS names and URIs (a SPIFFE id, say).
    public var dnsNames: [String]
    public var uris: [String]

    public init(subject: String, dnsNames: [String] = [], uris: [String] = []) {
        self.subject = subject
        self.dnsNames = dnsNames
        self.uris = uris
    }

    /// `attributes` (type and value, in certificate order) as RFC 4514 writes them:
    /// reversed, `,`-separated, with `, + " \ < > ;`, a leading `#` or space and a
    /// trailing space escaped, and control characters as `\XX` (so the subject is always a
    /// valid field value).
    public static func subject(_ attributes: [(type: String, value: String)]) -> String {
        attributes.reversed().map { "\($0.type)=\(escaped($0.value))" }.joined(separator: ",")
    }

    private static func escaped(_ value: String) -> String {
        var out = ""
        for (offset, character) in value.enumerated() {
            let leading = offset == 0 && (character == "#" || character == " ")
            let trailing = offset == value.count - 1 && character == " "
            if let ascii = character.asciiValue, ascii < 0x20 || ascii == 0x7F {
                out += "\\" + String(ascii, radix: 16, uppercase: true).leftPadded(to: 2)
                continue
            }
            if leading || trailing || ",+\"\\<>;".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
