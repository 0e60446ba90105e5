import LoomHTTP
import NIOCore
import NIOEmbedded
import Testing

@testable import LoomProxy

/// `ProtocolSelector` on an `EmbeddedChannel`: which version a cleartext connection's first
/// bytes choose, the bytes handed on intact, the 101 of an upgrade, and the deadline.
@Suite struct ProtocolSelectorTests {
    /// The versions the selector chose, in order (everything runs on the embedded loop).
    final class Choices {
        var all: [String] = []
    }

    /// A channel with a selector that records its choice (and adds nothing after itself,
    /// so what it hands on reaches `readInbound`).
    static func channel(_ chosen: Choices) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let selector = ProtocolSelector(signal: .preface, timeout: .seconds(10), limits: HTTP1Limits()) { _, version in
            switch version {
            case .http1: chosen.all.append("http1")
            case .http2: chosen.all.append("http2")
            case .http2Upgrade(let frame): chosen.all.append("upgrade \(frame.readableBytes > 9)")
            }
        }
        try channel.pipeline.syncOperations.addHandler(selector)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func handedOn(_ channel: EmbeddedChannel) throws -> String {
        var all = ByteBuffer()
        while var part = try channel.readInbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
        return String(buffer: all)
    }

    @Test func thePrefaceSplitAcrossReadsChoosesHTTP2() throws {
        let chosen = Choices()
        let channel = try Self.channel(chosen)
        try channel.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n"))
        #expect(chosen.all.isEmpty)
        try channel.writeInbound(ByteBuffer(string: "\r\nSM\r\n\r\nrest"))
        #expect(chosen.all == ["http2"])
        #expect(try Self.handedOn(channel) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest")
        _ = try? channel.finish()
    }

    @Test func anHTTP11HeadChoosesHTTP11WithItsBytes() throws {
        let chosen = Choices()
        let channel = try Self.channel(chosen)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n"))
        #expect(chosen.all.isEmpty, "a whole head first: it could ask to upgrade")
        try channel.writeInbound(ByteBuffer(string: "\r\nGET /next"))
        #expect(chosen.all == ["http1"])
        #expect(try Self.handedOn(channel) == "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next")
        // A head the parser refuses goes to HTTP/1.1 at once, which answers it 400.
        let other = try Self.channel(chosen)
        try other.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nBad Field: x\r\n"))
        #expect(chosen.all == ["http1", "http1"])
        _ = try? channel.finish()
        _ = try? other.finish()
    }

    @Test func anUpgradeIsAnswered101AndHandsOnNothing() throws {
        let chosen = Choices()
        let channel = try Self.channel(chosen)
        try channel.writeInbound(ByteBuffer(string: H2CUpgradeTests.upgrade + "\r\n"))
        #expect(chosen.all == ["upgrade true"])
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == H2CUpgrade.switching)
        #expect(try Self.handedOn(channel) == "")
        _ = try? channel.finish()
    }

    @Test func aConnectionThatDecidesNothingIsClosed() throws {
        let chosen = Choices()
        let channel = try Self.channel(chosen)
        try channel.writeInbound(ByteBuffer(string: "GET / HT"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(!channel.isActive && chosen.all.isEmpty)
    }
}
