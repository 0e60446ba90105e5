import NIOCore

/// The set of client addresses whose forwarding headers Loom believes.
///
/// A request from a trusted proxy keeps its `X-Forwarded-*` / `Forwarded` values and Loom
/// appends to them; from anyone else those headers are replaced, so a client cannot forge
/// its own address. Entries are single addresses or CIDR blocks, IPv4 or IPv6.
struct TrustedProxies: Sendable {
    /// One CIDR block as network bytes plus prefix length.
    struct Block: Sendable, Equatable {
        var bytes: [UInt8]
        var prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
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
    }

    let blocks: [Block]

    /// Entries that do not parse are skipped here; configuration validation reports them.
    init(_ entries: [String]) {
        blocks = entries.compactMap(Self.parse)
    }

    var isEmpty: Bool { blocks.isEmpty }

    func contains(_ address: SocketAddress?) -> Bool {
        guard !blocks.isEmpty, let bytes = address.flatMap(Self.bytes(of:)) else { return false }
        return blocks.contains { $0.contains(bytes) }
    }

    /// Parses `10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`.
    static func parse(_ entry: String) -> Block? {
        let parts = entry.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = try? SocketAddress(ipAddress: String(parts[0]), port: 0),
            let bytes = bytes(of: address)
        else { return nil }
        let maxBits = bytes.count * 8
        guard parts.count == 2 else { return Block(bytes: bytes, prefixLength: maxBits) }
        guard let length = Int(parts[1]), (0...maxBits).contains(length) else { return nil }
        return Block(bytes: bytes, prefixLength: length)
    }

    /// Raw address bytes; IPv4-mapped IPv6 addresses are reduced to IPv4.
    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6):
            let raw = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if raw[0..<10].allSatisfy({ $0 == 0 }) && raw[10] == 0xFF && raw[11] == 0xFF {
                return Array(raw[12..<16])
            }
            return raw
        case .unixDomainSocket:
            return nil
        }
    }

    /// Whether `entry` is a valid address or CIDR block (used by validation messages).
    static func isValid(_ entry: String) -> Bool { parse(entry) != nil }
}
