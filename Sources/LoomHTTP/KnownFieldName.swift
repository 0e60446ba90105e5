/// The field names a proxy treats specially, recognised from the received bytes with one
/// switch on the length and one case-folding comparison, instead of comparing every field
/// against every interesting name (which was a dozen comparisons per forwarded field).
public enum KnownFieldName: Equatable, Sendable {
    case host, contentLength, transferEncoding, connection, keepAlive, proxyConnection, te, upgrade, expect
    case xForwardedFor, xForwardedProto, xForwardedHost, xForwardedPort, forwarded, via, date

    /// Recognises `raw[start..<start + length]`; nil for any other name.
    @inline(__always)
    init?(_ raw: UnsafeRawBufferPointer, start: Int, length: Int) {
        func equals(_ wanted: StaticString) -> Bool {
            HTTPSyntax.equalsLowercased(raw, start: start, length: length, wanted)
        }
        switch length {
        case 2 where equals("te"): self = .te
        case 3 where equals("via"): self = .via
        case 4 where equals("host"): self = .host
        case 4 where equals("date"): self = .date
        case 6 where equals("expect"): self = .expect
        case 7 where equals("upgrade"): self = .upgrade
        case 9 where equals("forwarded"): self = .forwarded
        case 10 where equals("connection"): self = .connection
        case 10 where equals("keep-alive"): self = .keepAlive
        case 14 where equals("content-length"): self = .contentLength
        case 15 where equals("x-forwarded-for"): self = .xForwardedFor
        case 16 where equals("x-forwarded-host"): self = .xForwardedHost
        case 16 where equals("x-forwarded-port"): self = .xForwardedPort
        case 16 where equals("proxy-connection"): self = .proxyConnection
        case 17 where equals("transfer-encoding"): self = .transferEncoding
        case 17 where equals("x-forwarded-proto"): self = .xForwardedProto
        default: return nil
        }
    }

    /// Fields that describe one connection and are never forwarded (RFC 9110 §7.6.1), plus
    /// the obsolete `Proxy-Connection` some clients still send.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .transferEncoding, .upgrade: true
        default: false
        }
    }
}

extension HTTPHeaderBlock {
    /// The special name of field `index`, if it has one.
    public func knownName(at index: Int) -> KnownFieldName? {
        let f = fields[index]
        return bytes.withUnsafeReadableBytes { raw in
            KnownFieldName(raw, start: Int(f.nameStart), length: Int(f.nameLength))
        }
    }
}
