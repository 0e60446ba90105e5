import Foundation
import LoomConfig
import NIOCore

/// The set of client addresses whose forwarding headers Loom believes.
///
/// A request from a trusted proxy keeps its `X-Forwarded-*` / `Forwarded` values and Loom
/// appends to them; from anyone else those headers are replaced, so a client cannot forge
/// its own address. The blocks were parsed and validated with the configuration.
struct TrustedProxies: Sendable {
    let blocks: [AddressBlock]

    init(_ blocks: [AddressBlock]) {
        self.blocks = blocks
    }

    func contains(_ address: SocketAddress?) -> Bool {
        guard !blocks.isEmpty, let bytes = address.flatMap(Self.bytes(of:)) else { return false }
        return blocks.contains { $0.contains(bytes) }
    }

    /// The original client of a request received from `peer` (text form): the peer itself,
    /// or, when the peer is a trusted proxy, the nearest address in `forwardedFor` (every
    /// `X-Forwarded-For` line, in order, read right to left) that is not a trusted proxy too;
    /// the leftmost when every hop is trusted. What filters see as the client (an `ip_filter`
    /// must not be fooled by a forged `X-Forwarded-For` from an untrusted peer). An entry
    /// that is not an address (after dropping a `:port` and IPv6 brackets) makes the client
    /// unknown (nil): it is never mistaken for the proxy.
    func originalClient(peer: SocketAddress?, peerText: String?, forwardedFor: [String]) -> String? {
        guard contains(peer), !forwardedFor.isEmpty else { return peerText }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }
        var leftmost: String?
        for hop in hops.reversed() {
            guard let address = Self.address(of: hop.trimmingCharacters(in: .whitespaces)), let bytes = AddressBlock.addressBytes(address) else {
                return nil
            }
            if !blocks.contains(where: { $0.contains(bytes) }) { return address }
            leftmost = address
        }
        return leftmost ?? peerText
    }

    /// `203.0.113.9`, `203.0.113.9:5678`, `2001:db8::1` or `[2001:db8::1]:443` → the address.
    static func address(of entry: String) -> String? {
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else { return nil }
            return String(entry[entry.index(after: entry.startIndex)..<close])
        }
        let colons = entry.filter { $0 == ":" }.count
        if colons == 1, let colon = entry.firstIndex(of: ":") { return String(entry[..<colon]) }
        return entry.isEmpty ? nil : entry
    }

    /// The client's address as text for logs and forwarding headers. An IPv4 client reaching
    /// a dual-stack listener appears as `::ffff:a.b.c.d`; it is written as `a.b.c.d`, the form
    /// backends' allowlists and rate limits expect.
    static func text(of address: SocketAddress) -> String? {
        if case .v6 = address, let bytes = bytes(of: address), bytes.count == 16,
            bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF
        {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        return address.ipAddress
    }

    /// Raw network bytes of an IP socket address (nil for unix sockets).
    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4): withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6): withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: nil
        }
    }
}
