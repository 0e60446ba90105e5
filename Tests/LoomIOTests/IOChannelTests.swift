import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import LoomIO

/// LoomIO's loop and channels on real loopback sockets, with NIO handlers in their pipelines.
@Suite(.serialized) struct IOChannelTests {
    /// Echoes what it reads; optionally answers a half-close with "bye" and closes.
    final class Echo: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event {
                context.writeAndFlush(NIOAny(ByteBuffer(string: "bye")), promise: nil)
                context.close(mode: .output, promise: nil)
            }
        }
    }

    /// Gathers what a channel receives and the events it sees.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox(ByteBuffer())
        let events = NIOLockedValueBox<[String]>([])
        let inactive: EventLoopPromise<Void>
        let expected: Int
        let enough: EventLoopPromise<Void>

        init(loop: EventLoop, expecting expected: Int = .max) {
            inactive = loop.makePromise()
            enough = loop.makePromise()
            self.expected = expected
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            let count = received.withLockedValue { $0.writeBuffer(&bytes); return $0.readableBytes }
            if count >= expected { enough.succeed() }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { events.withLockedValue { $0.append("inputClosed") } }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            events.withLockedValue { $0.append("inactive") }
            inactive.succeed()
            enough.succeed()
        }

        var text: String { received.withLockedValue { String(buffer: $0) } }
    }

    private func withGroup<T>(threads: Int = 2, _ body: (IOEventLoopGroup) async throws -> T) async throws -> T {
        let group = try IOEventLoopGroup(numberOfThreads: threads)
        do {
            let result = try await body(group)
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func echoServer(_ group: IOEventLoopGroup, halfClosure: Bool = false) async throws -> Channel {
        try await IOServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: halfClosure)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    private func connect(_ group: IOEventLoopGroup, to server: Channel, _ collector: @escaping @Sendable (EventLoop) -> Collector) async throws -> (Channel, Collector) {
        let loop = group.next()
        let handler = collector(loop)
        let channel = try await IOClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(to: server.localAddress!).get()
        return (channel, handler)
    }

    @Test func bytesGoThereAndBack() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0, expecting: 11) }
            #expect(client.isActive && client.remoteAddress?.port == server.localAddress?.port)
            try await client.writeAndFlush(ByteBuffer(string: "hello")).get()
            try await client.writeAndFlush(ByteBuffer(string: " world")).get()
            try await collector.enough.futureResult.get()
            #expect(collector.text == "hello world")
            try await client.close().get()
            try await server.close().get()
        }
    }

    /// 4 MiB each way, written in one go: the socket fills, writes wait for EPOLLOUT, the
    /// channel turns unwritable past its high watermark and writable again, and every byte
    /// arrives in order.
    @Test func aLargeTransferArrivesWholeThroughFullSockets() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let size = 4 << 20
            let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0, expecting: size) }
            let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) })
            let sent = payload
            let wasUnwritable = try await client.eventLoop.submit {
                client.write(sent, promise: nil)
                let unwritable = !client.isWritable
                client.flush()
                return unwritable
            }.get()
            #expect(wasUnwritable, "4 MiB queued is past the 64 KiB high watermark")
            try await collector.enough.futureResult.get()
            #expect(collector.received.withLockedValue { $0 } == payload)
            #expect(try await client.eventLoop.submit { client.isWritable }.get())
            try await client.close().get()
            try await server.close().get()
        }
    }

    @Test func aHalfCloseIsAnInputClosedEventWhenAllowed() async throws {
        try await withGroup { group in
            let server = try await echoServer(group, halfClosure: true)
            let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0) }
            try await client.writeAndFlush(ByteBuffer(string: "ping")).get()
            try await client.close(mode: .output).get()
            try await client.closeFuture.get()
            // The server saw the FIN as `inputClosed` (its "bye"), answered and shut its output,
            // which closed it; the client, its output already shut, closed on the server's FIN.
            #expect(collector.text == "pingbye")
            #expect(collector.events.withLockedValue { $0 } == ["inactive"])
            try await server.close().get()
        }
    }

    @Test func withoutHalfClosureAPeersFINClosesTheChannel() async throws {
        try await withGroup { group in
            let server = try await echoServer(group, halfClosure: false)
            let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0) }
            try await client.close(mode: .output).get()
            // The server closes outright, without the "bye" a half-closed server sends.
            try await collector.inactive.futureResult.get()
            #expect(collector.text.isEmpty)
            try await server.close().get()
        }
    }

    @Test func aRefusedConnectFailsWithTheSystemsError() async throws {
        try await withGroup { group in
            // A port bound but not listening refuses.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            let port = Int(UInt16(bigEndian: address.sin_port))
            await #expect {
                try await IOClientBootstrap(group: group.next()).connect(host: "127.0.0.1", port: port).get()
            } throws: { error in
                (error as? IOError)?.errnoCode == ECONNREFUSED
            }
        }
    }

    @Test func aHostNameIsResolvedOffTheLoop() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let client = try await IOClientBootstrap(group: group.next()).connect(host: "localhost", port: server.localAddress!.port!).get()
            #expect(client.isActive)
            try await client.close().get()
            try await server.close().get()
        }
    }

    @Test func unixSocketsWork() async throws {
        try await withGroup { group in
            let path = "/tmp/loomio-test-\(getpid()).sock"
            unlink(path)
            defer { unlink(path) }
            let server = try await IOServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
                }
                .bind(unixDomainSocketPath: path).get()
            let loop = group.next()
            let collector = Collector(loop: loop, expecting: 4)
            let client = try await IOClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(unixDomainSocketPath: path).get()
            try await client.writeAndFlush(ByteBuffer(string: "unix")).get()
            try await collector.enough.futureResult.get()
            #expect(collector.text == "unix")
            try await client.close().get()
            try await server.close().get()
        }
    }

    /// With autoRead off nothing is read until a handler asks: the backpressure loom's
    /// handlers rely on. Bytes that arrived meanwhile are read when asked, with no new edge.
    @Test func withoutAutoReadBytesWaitForARead() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let loop = group.next()
            let collector = Collector(loop: loop, expecting: 3)
            let client = try await IOClientBootstrap(group: loop)
                .channelOption(.autoRead, value: false)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(to: server.localAddress!).get()
            try await client.writeAndFlush(ByteBuffer(string: "abc")).get()
            try await Task.sleep(for: .milliseconds(100))
            #expect(collector.text.isEmpty)
            client.read()
            try await collector.enough.futureResult.get()
            #expect(collector.text == "abc")
            try await client.close().get()
            try await server.close().get()
        }
    }

    @Test func closingFailsPendingWritesAndLaterOnes() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let (client, _) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0) }
            let (pending, closed) = try await client.eventLoop.submit {
                let pending = client.write(ByteBuffer(string: "never flushed"))
                return (pending, client.close())
            }.get()
            try await closed.get()
            await #expect(throws: ChannelError.ioOnClosedChannel) { try await pending.get() }
            await #expect(throws: ChannelError.ioOnClosedChannel) { try await client.writeAndFlush(ByteBuffer(string: "late")).get() }
            await #expect(throws: ChannelError.alreadyClosed) { try await client.close().get() }
            try await server.close().get()
        }
    }

    @Test func aFileRegionGoesOutBySendfile() async throws {
        try await withGroup { group in
            let path = "/tmp/loomio-file-\(getpid())"
            let content = String(repeating: "0123456789", count: 50_000)
            let file = fopen(path, "w")!
            fputs(content, file)
            fclose(file)
            defer { unlink(path) }
            let server = try await echoServer(group)
            let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0, expecting: 500_000 - 3) }
            let handle = try Self.openFile(path)
            defer { try? handle.close() }
            try await client.writeAndFlush(FileRegion(fileHandle: handle, readerIndex: 3, endIndex: 500_000)).get()
            try await collector.enough.futureResult.get()
            #expect(collector.text == String(content.dropFirst(3)))
            try await client.close().get()
            try await server.close().get()
        }
    }

    private static func openFile(_ path: String) throws -> NIOFileHandle {
        try NIOFileHandle(_deprecatedPath: path)
    }

    @Test func tasksAndTimersRunOnTheLoopInOrder() async throws {
        try await withGroup { group in
            let loop = group.next()
            let order = NIOLockedValueBox<[String]>([])
            let late = loop.scheduleTask(in: .milliseconds(40)) { order.withLockedValue { $0.append("40ms") } }
            let early = loop.scheduleTask(in: .milliseconds(10)) { order.withLockedValue { $0.append("10ms") } }
            let cancelled = loop.scheduleTask(in: .milliseconds(20)) { order.withLockedValue { $0.append("cancelled") } }
            cancelled.cancel()
            // Queued from this (other) thread: the loop wakes for it.
            loop.execute { order.withLockedValue { $0.append("now") } }
            try await early.futureResult.get()
            try await late.futureResult.get()
            await #expect(throws: EventLoopError.cancelled) { try await cancelled.futureResult.get() }
            #expect(order.withLockedValue { $0 } == ["now", "10ms", "40ms"])
            #expect(try await loop.submit { loop.inEventLoop }.get())
            #expect(!loop.inEventLoop)
        }
    }

    @Test func anOptionItDoesNotImplementIsRefused() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let (client, _) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0) }
            await #expect(throws: ChannelError.operationUnsupported) {
                try await client.setOption(.datagramVectorReadMessageCount, value: 4).get()
            }
            try await client.setOption(.tcpOption(.tcp_nodelay), value: 1).get()
            #expect(try await client.getOption(.tcpOption(.tcp_nodelay)).get() != 0)
            try await client.close().get()
            try await server.close().get()
        }
    }
}

extension IOChannelTests {
    /// Records the size of each read.
    final class ReadSizes: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let sizes = NIOLockedValueBox<[Int]>([])
        let enough: EventLoopPromise<Void>
        let expected: Int

        init(loop: EventLoop, expecting expected: Int) {
            enough = loop.makePromise()
            self.expected = expected
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let size = unwrapInboundIn(data).readableBytes
            let total = sizes.withLockedValue { $0.append(size); return $0.reduce(0, +) }
            if total >= expected { enough.succeed() }
        }
    }

    /// A channel's own `.recvAllocator` sizes its reads, also from the loop's shared buffers
    /// that the server's larger reads (the same loop here) left behind.
    @Test func aReceiveAllocatorSetOnAChannelSizesItsReads() async throws {
        try await withGroup(threads: 1) { group in
            let server = try await echoServer(group)
            let loop = group.next()
            let rounds = 100
            let handler = ReadSizes(loop: loop, expecting: 11 * rounds)
            let client = try await IOClientBootstrap(group: loop)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                }
                .connect(to: server.localAddress!).get()
            #expect(try await client.getOption(.recvAllocator).get() is FixedSizeRecvByteBufferAllocator)
            for _ in 0..<rounds {
                try await client.writeAndFlush(ByteBuffer(string: "hello world")).get()
            }
            try await handler.enough.futureResult.get()
            let sizes = handler.sizes.withLockedValue { $0 }
            #expect(sizes.allSatisfy { $0 <= 4 } && sizes.reduce(0, +) == 11 * rounds)
            try await client.close().get()
            try await server.close().get()
        }
    }

    /// `close(mode: .output)` waits for what was written before it, then sends the FIN.
    @Test func shuttingOutputSendsQueuedBytesFirst() async throws {
        try await withGroup { group in
            let server = try await echoServer(group, halfClosure: true)
            let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0) }
            let size = 1 << 20
            let closed = try await client.eventLoop.submit {
                client.write(ByteBuffer(repeating: UInt8(ascii: "x"), count: size), promise: nil)
                let closed = client.close(mode: .output)
                client.flush()
                return closed
            }.get()
            try await closed.get()
            try await client.closeFuture.get()
            #expect(collector.received.withLockedValue { $0.readableBytes } == size + 3)
            try await server.close().get()
        }
    }
}

extension IOChannelTests {
    /// Keeps every buffer it is handed, uncopied: the loop's receive buffers must never be
    /// reused while a handler still holds one.
    final class Keeper: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var kept: [ByteBuffer] = []
        var count = 0
        let expected: Int
        let done: EventLoopPromise<[ByteBuffer]>

        init(expected: Int, done: EventLoopPromise<[ByteBuffer]>) {
            self.expected = expected
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            kept.append(buffer)
            count += buffer.readableBytes
            if count >= expected { done.succeed(kept) }
        }
    }

    @Test func buffersAHandlerKeepsAreNeverReused() async throws {
        try await withGroup { group in
            let server = try await echoServer(group)
            let loop = group.next()
            let size = 1 << 20
            let done = loop.makePromise(of: [ByteBuffer].self)
            let client = try await IOClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Keeper(expected: size, done: done))
                    }
                }
                .connect(to: server.localAddress!).get()
            let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
            // In small writes, so the echo comes back in many reads.
            for offset in stride(from: 0, to: size, by: 16 * 1024) {
                client.write(payload.getSlice(at: offset, length: 16 * 1024)!, promise: nil)
                if offset % (256 * 1024) == 0 { client.flush() }
            }
            client.flush()
            let kept = try await done.futureResult.get()
            #expect(kept.count > 8, "more reads than the loop has receive buffers")
            var joined = ByteBuffer()
            for var buffer in kept { joined.writeBuffer(&buffer) }
            #expect(joined == payload)
            try await client.close().get()
            try await server.close().get()
        }
    }

    /// Shutting the group down closes what is still open and fails timers still waiting.
    /// (Their outcomes are taken by callbacks set while the loop runs: a future of a loop that
    /// has stopped can no longer call back, on NIO's loops as on these.)
    @Test func shutdownClosesChannelsAndFailsTimers() async throws {
        let group = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await echoServer(group)
        let (client, collector) = try await connect(group, to: server) { IOChannelTests.Collector(loop: $0) }
        let loop = group.next()
        let outcomes = NIOLockedValueBox<[String]>([])
        try await loop.submit {
            let timer = loop.scheduleTask(in: .hours(1)) {}
            timer.futureResult.whenFailure { error in outcomes.withLockedValue { $0.append("timer: \(error)") } }
            server.closeFuture.whenSuccess { outcomes.withLockedValue { $0.append("server closed") } }
        }.get()
        try await group.shutdownGracefully()
        #expect(!client.isActive)
        #expect(collector.events.withLockedValue { $0 } == ["inactive"])
        #expect(Set(outcomes.withLockedValue { $0 }) == ["timer: \(EventLoopError.shutdown)", "server closed"])
    }
}
