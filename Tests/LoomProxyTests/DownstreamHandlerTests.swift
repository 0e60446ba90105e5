import Foundation
import LoomConfig
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import LoomProxy

/// `DownstreamHandler` on an `EmbeddedChannel`: no sockets, virtual time. Covers what the
/// handler decides on its own (rejections, local answers, pipelining order, connection
/// timers); proxying to upstreams is covered end to end.
@Suite struct DownstreamHandlerTests {
    /// A handler in a channel that looks connected from 192.0.2.1, with `routes`.
    private func makeChannel(
        routes: [RouteConfig], configure: (inout LoomConfiguration) -> Void = { _ in }
    ) throws -> (EmbeddedChannel, EmbeddedEventLoop, CapturedLogs) {
        var configuration = LoomConfiguration(origin: .environment, routes: routes)
        configure(&configuration)
        let loop = EmbeddedEventLoop()
        let logs = CapturedLogs()
        let accessLog = AccessLog(logger: Logger(label: "loom.access") { _ in CapturingLogHandler(store: logs) }, enabled: true)
        let handler = DownstreamHandler(
            loop: LoopContext(eventLoop: loop), store: SnapshotStore(ProxySnapshot(configuration)),
            listenerPort: 8080, accessLog: accessLog)
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 40000)).wait()
        return (channel, loop, logs)
    }

    private static let hello = RouteConfig(
        name: "hello", match: RouteMatch(path: .exact("/hello")),
        action: .respond(StaticResponse(status: 200, headers: [HeaderPair(name: "Content-Type", value: "text/plain")], body: "hi")))

    /// Everything written to the client so far, as text.
    private func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func respondRouteAnswersAndKeepsTheConnection() throws {
        let (channel, _, logs) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\nX-Request-ID: abc-123\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Content-Type: text/plain\r\n"))
        #expect(text.contains("X-Request-ID: abc-123\r\n"))
        #expect(text.contains("Content-Length: 2\r\n"))
        #expect(text.range(of: #"\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n"#, options: .regularExpression) != nil)
        #expect(text.hasSuffix("\r\n\r\nhi"))
        #expect(!text.contains("Connection: close"))
        #expect(channel.isActive)
        #expect(logs.all.first?["status"]?.description == "200")
    }

    @Test func aResponseHeldForTheEndOfTheLoopTickGoesOutBeforeAnErrorCloses() throws {
        // Two connections on one loop that gathers flushes per tick (`LoopTick`).
        let loop = EmbeddedEventLoop()
        let context = LoopContext(eventLoop: loop, perTick: true)
        let store = SnapshotStore(ProxySnapshot(LoomConfiguration(origin: .environment, routes: [Self.hello])))
        func connection() throws -> EmbeddedChannel {
            let handler = DownstreamHandler(
                loop: context, store: store, listenerPort: 8080, accessLog: AccessLog(logger: Logger(label: "loom.access"), enabled: false))
            let channel = EmbeddedChannel(handler: handler, loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 40000)).wait()
            return channel
        }
        let first = try connection(), second = try connection()
        try first.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        try second.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        // Within one tick (the embedded loop has not run): both answers wait for its end.
        #expect(try output(first).isEmpty)
        #expect(try output(second).isEmpty)
        // TLS reports a client's FIN without close_notify as an error, in the same tick.
        struct UncleanShutdown: Error {}
        second.pipeline.fireErrorCaught(UncleanShutdown())
        #expect(try output(second).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(!second.isActive)
        loop.run()  // the end of the tick: the first answer goes, the second went already
        #expect(try output(first).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(try output(second).isEmpty)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string:
            "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nHEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try output(channel)
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["200", "404", "200"])
        #expect(!text.hasSuffix("hi"))  // HEAD: no body
    }

    @Test func unknownPathGetsJSON404WithRequestID() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        let id = try #require(text.split(separator: "\r\n").first { $0.hasPrefix("X-Request-ID: ") }).dropFirst(14)
        #expect(id.count == 32)
        #expect(text.contains("\"error\":\"not_found\""))
        #expect(text.contains("\"request_id\":\"\(id)\""))
    }

    @Test(arguments: ["/hello/../admin", "/x/%2e%2E/admin", "/./hello"])
    func dotSegmentsAreRejectedBeforeRouting(path: String) throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("\"message\":\"request path contains dot segments\""))
        // A well-formed request that merely has a bad path does not cost the connection.
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 2)
    }

    @Test func clientThatDoesNotReadGetsNoMoreAnswersUntilItDoes() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        let handler = try channel.pipeline.syncOperations.handler(type: DownstreamHandler.self)
        channel.isWritable = false
        try channel.writeInbound(ByteBuffer(string: String(repeating: "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", count: 3)))
        // Nothing is answered (the answers would only pile up) and reading stops.
        #expect(try output(channel).isEmpty)
        #expect(handler.readGate.isPaused)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try output(channel).components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        #expect(!handler.readGate.isPaused)
    }

    @Test func clientThatNeverReadsIsDisconnectedAfterTheIdleTimeout() throws {
        let (channel, loop, _) = try makeChannel(routes: [Self.hello]) { $0.server.timeouts.idle = .seconds(5) }
        channel.isWritable = false
        try channel.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        loop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test func partialHeadAfterTheClientsFINClosesAtOnce() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHo"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        // No 408 after the header timeout: the connection is closing now, quietly.
        #expect(try output(channel).isEmpty)
        let handler = try channel.pipeline.syncOperations.handler(type: DownstreamHandler.self)
        #expect(handler.machine.state != .awaitingHead)
    }

    @Test func requestsHeldWhileNotReadingAreAnsweredAfterTheClientsFIN() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        channel.isWritable = false
        try channel.writeInbound(ByteBuffer(string: String(repeating: "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", count: 2)))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        let text = try output(channel)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        // The last one says it is the last.
        #expect(text.hasSuffix("Connection: close\r\n\r\nhi"))
    }

    @Test func connectIsNotImplemented() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 501 Not Implemented\r\n"))
        #expect(text.contains("CONNECT tunnels are not supported"))
    }

    @Test func wrongMethodGets405WithAllow() throws {
        var route = Self.hello
        route.match.methods = ["GET", "HEAD"]
        let (channel, _, _) = try makeChannel(routes: [route])
        try channel.writeInbound(ByteBuffer(string: "DELETE /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(text.contains("Allow: GET, HEAD\r\n"))
    }

    @Test(arguments: [
        ("GET /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("GET /hello HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ])
    func invalidRequestsAreRejectedAndTheConnectionClosed(request: String, status: Int) throws {
        let (channel, loop, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: request))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 \(status) "))
        #expect(text.contains("Connection: close\r\n"))
        // After the linger period the socket is closed.
        loop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive)
    }

    @Test func limitsMapToTheirStatuses() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello]) { config in
            config.server.limits = Limits(maxHeaderBytes: 256, maxURIBytes: 32, maxBodyBytes: 10)
        }
        try channel.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"))
        #expect(try output(channel).hasPrefix("HTTP/1.1 413 "))

        let (uri, _, _) = try makeChannel(routes: [Self.hello]) { $0.server.limits = Limits(maxHeaderBytes: 256, maxURIBytes: 32) }
        try uri.writeInbound(ByteBuffer(string: "GET /\(String(repeating: "a", count: 40)) HTTP/1.1\r\n"))
        #expect(try output(uri).hasPrefix("HTTP/1.1 414 "))

        let (header, _, _) = try makeChannel(routes: [Self.hello]) { $0.server.limits = Limits(maxHeaderBytes: 256, maxURIBytes: 32) }
        try header.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 300))\r\n"))
        #expect(try output(header).hasPrefix("HTTP/1.1 431 "))
    }

    @Test func slowRequestHeadGets408() throws {
        let (channel, loop, logs) = try makeChannel(routes: [Self.hello]) {
            $0.server.timeouts.requestHeader = .seconds(2)
        }
        try channel.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHo"))
        loop.advanceTime(by: .milliseconds(1900))
        #expect(try output(channel).isEmpty)
        loop.advanceTime(by: .milliseconds(200))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(text.contains("Connection: close"))
        #expect(logs.all.last?["status"]?.description == "408")
    }

    @Test func idleKeepAliveConnectionIsClosedQuietly() throws {
        let (channel, loop, _) = try makeChannel(routes: [Self.hello]) { $0.server.timeouts.idle = .seconds(5) }
        try channel.writeInbound(ByteBuffer(string: "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        _ = try output(channel)
        loop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(try output(channel).isEmpty)
    }

    @Test func bufferedBodyOfALocallyAnsweredRequestIsSkippedAndTheConnectionKept() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string:
            "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try output(channel)
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["404", "200", "200"])
        #expect(!text.contains("Connection: close"))
        #expect(channel.isActive)
    }

    @Test func requestWithUnreadBodyGetsLocalAnswerThenClose() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        try channel.writeInbound(ByteBuffer(string: "POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        // The rest of the body was never read, so the next request's start is unknown.
        #expect(text.contains("Connection: close\r\n"))
    }

    @Test func shutdownClosesIdleConnectionsAndMarksBusyOnes() throws {
        let (channel, _, _) = try makeChannel(routes: [Self.hello])
        let handler = try channel.pipeline.syncOperations.handler(type: DownstreamHandler.self)
        handler.beginShutdown()
        #expect(!channel.isActive)
    }
}
