import LoomConfig
import Logging
import NIOCore
import NIOEmbedded
import LoomTestSupport
import Testing

@testable import LoomProxy

/// Random byte streams through `DownstreamHandler` (no sockets, virtual time): valid requests,
/// garbage and truncations in random splits, with random FINs and clock jumps. The handler
/// must never crash, every byte it writes must parse as a sequence of well-formed responses,
/// and nothing may follow a response that announced `Connection: close`.
@Suite struct DownstreamHandlerFuzzTests {
    static let pieces = [
        "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "DELETE /hello HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /hello HTTP/1.0\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET /../x HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n",
        "\u{0}\u{1}garbage\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHo",
    ]

    static let expectedStatuses: Set<Int> = [200, 400, 404, 405, 408, 413, 414, 431, 505]

    @Test func randomStreamsNeverBreakTheConnectionContract() throws {
        let seed: UInt64 = 0x5EED_10A0
        var random = SplitMix64(state: seed)
        var route = RouteConfig(
            name: "hello", match: RouteMatch(path: .exact("/hello")),
            action: .respond(StaticResponse(status: 200, body: "hi")))
        route.match.methods = ["GET", "HEAD", "POST"]
        for iteration in 0..<1500 {
            var configuration = LoomConfiguration(origin: .environment, routes: [route])
            configuration.server.limits = Limits(maxHeaderBytes: 512, maxURIBytes: 128, maxBodyBytes: 64)
            let loop = EmbeddedEventLoop()
            let handler = DownstreamHandler(
                loop: LoopContext(eventLoop: loop), store: SnapshotStore(ProxySnapshot(configuration)), listenerPort: 80,
                accessLog: AccessLog(logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }, enabled: false))
            let channel = EmbeddedChannel(handler: handler, loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 1)).wait()

            var stream = [UInt8]()
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                var piece = Array(Self.pieces.randomElement(using: &random)!.utf8)
                if Int.random(in: 0..<10, using: &random) == 0, !piece.isEmpty {
                    // Corrupt one byte now and then.
                    piece[Int.random(in: 0..<piece.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                stream += piece
            }
            var offset = 0
            while offset < stream.count, channel.isActive {
                let size = Int.random(in: 1...max(1, stream.count - offset), using: &random)
                try channel.writeInbound(ByteBuffer(bytes: stream[offset..<(offset + size)]))
                offset += size
                if Bool.random(using: &random) { loop.advanceTime(by: .milliseconds(Int64.random(in: 0...3000, using: &random))) }
            }
            if Bool.random(using: &random) { channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            loop.advanceTime(by: .seconds(120))

            var output = [UInt8]()
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { output += buffer.readableBytesView }
            let context = "seed \(seed) iteration \(iteration) input \(String(decoding: stream, as: UTF8.self).debugDescription)"
            try Self.checkResponses(output, context: context)
            _ = try? channel.finish()
        }
    }

    /// Parses `output` as back-to-back responses (with Content-Length or no body).
    static func checkResponses(_ output: [UInt8], context: String) throws {
        var rest = output[...]
        var closed = false
        while !rest.isEmpty {
            #expect(!closed, "bytes after a Connection: close response (\(context))")
            guard let end = rest.firstRange(of: [13, 10, 13, 10]) else {
                Issue.record("truncated response head (\(context))")
                return
            }
            let head = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
            let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
            #expect(expectedStatuses.contains(status), "unexpected status line \(lines.first ?? "") (\(context))")
            let length = lines.first { $0.lowercased().hasPrefix("content-length: ") }.flatMap { Int($0.dropFirst(16)) } ?? 0
            closed = closed || lines.contains { $0.lowercased() == "connection: close" }
            rest = rest[end.upperBound...]
            // HEAD responses carry a length but no body. Bodies here are "hi" or JSON, never a
            // status line, so a body is present exactly when no status line follows.
            if length > 0, !rest.isEmpty, !rest.starts(with: Array("HTTP/1.1 ".utf8)) {
                #expect(rest.count >= length, "truncated body (\(context))")
                rest = rest.dropFirst(length)
            }
        }
    }
}
