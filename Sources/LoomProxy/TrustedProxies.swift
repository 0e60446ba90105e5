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
    /// or, when the peer is a trusted proxy, the nearest address in `X-Forwarded-For` (read
    /// right to left) that is not a trusted proxy too. What filters see as the client (an
    /// `ip_filter` must not be fooled by a forged `X-Forwarded-For` from an untrusted peer).
    func originalClient(peer: SocketAddress?, peerText: String?, forwardedFor: String?) -> String? {
        guard contains(peer), let forwardedFor else { return peerText }
        for hop in forwardedFor.split(separator: ",").reversed() {
            let address = hop.trimmingCharacters(in: .whitespaces)
            guard let bytes = AddressBlock.addressBytes(address) else { return peerText }
            if !blocks.contains(where: { $0.contains(bytes) }) { return address }
        }
        return peerText
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
