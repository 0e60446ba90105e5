#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address or CIDR block (`10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`).
///
/// Used for `trusted_proxies`. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are stored and
/// matched as IPv4, so a dual-stack listener does not dodge an IPv4 rule.
public struct AddressBlock: Sendable, Hashable, CustomStringConvertible {
    /// Network bytes: 4 for IPv4, 16 for IPv6.
    public let bytes: [UInt8]
    public let prefixLength: Int

    /// Parses the text form; nil when it is not an address or the prefix is out of range.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.addressBytes(String(parts[0])) else { return nil }
        let maxBits = bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maxBits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maxBits
        }
        self.bytes = bytes
    }

    /// Whether the address with these network bytes lies in the block.
    public func contains(_ address: [UInt8]) -> Bool {
        let address = Self.unmapped(address)
        guard address.count == bytes.count else { return false }
        var remaining = prefixLength
        for index in bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if address[index] & mask != bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String {
        let text: String
        if bytes.count == 4 {
            text = bytes.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        }
        return prefixLength == bytes.count * 8 ? text : "\(text)/\(prefixLength)"
    }

    /// Network bytes of an IPv4 or IPv6 address in text form.
    public static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return unmapped(withUnsafeBytes(of: &v6) { Array($0) })
        }
        return nil
    }

    /// `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged.
    static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else {
            return bytes
        }
        return Array(bytes[12..<16])
    }
}
