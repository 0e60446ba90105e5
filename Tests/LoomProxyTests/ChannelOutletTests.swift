import LoomIO
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import LoomProxy

/// `ChannelOutlet`: straight to and from a LoomIO socket only when told the handler is alone,
/// through the pipeline otherwise, and the bytes and reads arrive either way.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ChannelOutletTests {
    /// Echoes each read back through an outlet, and asks for reads through it (auto-read's
    /// `read` comes to this handler first), so a second message arrives only if reads go on.
    final class OutletEcho: SocketReadingHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer
        private var outlet = ChannelOutlet()
        private let direct: Bool
        let wasDirect = NIOLockedValueBox<Bool?>(nil)

        init(direct: Bool) { self.direct = direct }

        func handlerAdded(context: ChannelHandlerContext) {
            outlet.attach(context, alone: direct ? self : nil)
            wasDirect.withLockedValue { $0 = outlet.isDirect }
        }

        func handlerRemoved(context: ChannelHandlerContext) { outlet.detach() }

        func socketWantsRead() { outlet.read() }
        // Flushed only at the batch's end: without `socketReadComplete`, nothing comes back.
        func socketRead(_ buffer: ByteBuffer) { outlet.write(buffer) }
        func socketReadComplete() { outlet.flush() }
    }

    /// An outbound handler in front: marks every write that passes it.
    final class Marker: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = ByteBuffer
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            var marked = ByteBuffer(string: "+")
            var bytes = unwrapOutboundIn(data)
            marked.writeBuffer(&bytes)
            context.write(NIOAny(marked), promise: promise)
        }
    }

    /// Gathers what the client receives; `text(atLeast:)` waits for that many bytes.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let loop: EventLoop
        // On the loop only.
        private var received = ""
        private var waiters: [(count: Int, promise: EventLoopPromise<String>)] = []

        init(loop: EventLoop) { self.loop = loop }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            let count = received.utf8.count
            for waiter in waiters where waiter.count <= count { waiter.promise.succeed(received) }
            waiters.removeAll { $0.count <= count }
        }

        func text(atLeast count: Int) -> EventLoopFuture<String> {
            loop.flatSubmit {
                if self.received.utf8.count >= count { return self.loop.makeSucceededFuture(self.received) }
                let promise = self.loop.makePromise(of: String.self)
                self.waiters.append((count, promise))
                return promise.futureResult
            }
        }
    }

    @Test func anEmbeddedChannelGoesThroughThePipelineWhateverItIsTold() throws {
        let echo = OutletEcho(direct: true)
        let channel = EmbeddedChannel(handler: echo)
        #expect(echo.wasDirect.withLockedValue { $0 } == false)
        try channel.writeInbound(ByteBuffer(string: "ping"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "ping"))
        _ = try channel.finish()
    }

    @Test func aLoomSocketTakesWritesAndReadsStraightWhenNothingIsInFront() async throws {
        let (text, direct) = try await echo(direct: true, marked: false)
        #expect(direct == true)
        #expect(text == "onetwo")
    }

    @Test func aHandlerInFrontKeepsThePipelinesPath() async throws {
        let (text, direct) = try await echo(direct: false, marked: true)
        #expect(direct == false)
        #expect(text == "+one+two")
    }

    /// Sends "one", waits for its echo, sends "two": what came back, and whether the server's
    /// outlet went straight to the socket.
    private func echo(direct: Bool, marked: Bool) async throws -> (String, Bool?) {
        let group = try IOEventLoopGroup(numberOfThreads: 1)
        let echo = OutletEcho(direct: direct)
        do {
            let server = try await IOServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if marked { try channel.pipeline.syncOperations.addHandler(Marker()) }
                        try channel.pipeline.syncOperations.addHandler(echo)
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let loop = group.next()
            let collector = Collector(loop: loop)
            let client = try await IOClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(to: server.localAddress!).get()
            let mark = marked ? 1 : 0
            try await client.writeAndFlush(ByteBuffer(string: "one")).get()
            _ = try await collector.text(atLeast: 3 + mark).get()
            try await client.writeAndFlush(ByteBuffer(string: "two")).get()
            let text = try await collector.text(atLeast: 6 + 2 * mark).get()
            try await client.close().get()
            try await server.close().get()
            try await group.shutdownGracefully()
            return (text, echo.wasDirect.withLockedValue { $0 })
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }
}
