import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import LoomIO

/// Cases where LoomIO must behave as NIOPosix does (found by a review against its sources):
/// the tests with a "nio" argument run the same handler on both, so NIO shows the expected
/// behaviour and LoomIO must match it.
@Suite(.serialized) struct IOChannelSemanticsTests {
    final class Seen: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = NIOLockedValueBox(0)
        let inactive = NIOLockedValueBox(false)
        let events = NIOLockedValueBox<[String]>([])
        func channelActive(context: ChannelHandlerContext) { events.withLockedValue { $0.append("active") }; context.fireChannelActive() }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let n = unwrapInboundIn(data).readableBytes
            bytes.withLockedValue { $0 += n }
        }
        func channelInactive(context: ChannelHandlerContext) { inactive.withLockedValue { $0 = true } }
    }

    static func waitFor(_ ms: Int, _ cond: () -> Bool) async -> Bool {
        for _ in 0..<(ms / 10) {
            if cond() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return cond()
    }

    /// A NIOPosix server whose child writes `greeting` (if any) and closes (if asked) on channelActive.
    final class Greeter: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let greeting: String?
        let close: Bool
        init(greeting: String?, close: Bool) { self.greeting = greeting; self.close = close }
        func channelActive(context: ChannelHandlerContext) {
            if let greeting { context.writeAndFlush(NIOAny(ByteBuffer(string: greeting)), promise: nil) }
            if close { context.close(promise: nil) }
        }
    }

    func greeterServer(_ group: EventLoopGroup, greeting: String?, close: Bool) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Greeter(greeting: greeting, close: close)) } }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// Connect completes in the same epoll event as the server's first bytes (loop busy 200 ms right after connect()).
    @Test(arguments: [false, true]) func bytesArrivingWithTheConnectEdgeAreRead(_ closeAfter: Bool) async throws {
        let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await greeterServer(nio, greeting: "hello", close: closeAfter)
        let loop = io.next()
        let seen = Seen()
        let connecting = IOClientBootstrap(group: loop)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(seen) } }
            .connect(to: server.localAddress!)
        loop.execute { usleep(200_000) }  // same turn as the connect: completion + data + FIN land before epoll_wait
        let client = try await connecting.get()
        let got = await Self.waitFor(2000) { seen.bytes.withLockedValue { $0 } == 5 }
        let closed = await Self.waitFor(closeAfter ? 1000 : 0) { seen.inactive.withLockedValue { $0 } }
        #expect(got, "the greeting sent before the connect edge was handled never reached channelRead")
        if closeAfter { #expect(closed, "the server's FIN in the connect edge was never seen") }
        try? await client.close().get()
        try await server.close().get()
        try await io.shutdownGracefully()
        try await nio.shutdownGracefully()
    }

    /// A child that queues 4 MiB, asks for close(mode: .output), and meanwhile gets the peer's FIN.
    final class BigThenShut: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let inactive = NIOLockedValueBox(false)
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(ByteBuffer(repeating: 7, count: 4 << 20)), promise: nil)
            context.close(mode: .output, promise: nil)
            context.fireChannelActive()
        }
        func channelInactive(context: ChannelHandlerContext) { inactive.withLockedValue { $0 = true } }
    }

    /// Raw blocking client: connect, send FIN at once, after 300 ms read to EOF, then close.
    static func rawClient(port: Int) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port).bigEndian
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        shutdown(fd, Int32(SHUT_WR))
        usleep(300_000)
        var total = 0
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            total += n
        }
        close(fd)
        return total
    }

    @Test(arguments: ["nio", "loomio"]) func bothHalvesShutClosesTheChannel(_ which: String) async throws {
        let handler = BigThenShut()
        let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await Self.server(which, nio: nio, io: io, option: .allowRemoteHalfClosure, value: true, handler)
        let port = server.localAddress!.port!
        let total = await Task.detached { Self.rawClient(port: port) }.value
        #expect(total == 4 << 20)
        let closed = await Self.waitFor(2000) { handler.inactive.withLockedValue { $0 } }
        #expect(closed, "\(which): input shut, output shut after drain, peer gone, and the channel is still open")
        try await server.close().get()
        try await io.shutdownGracefully()
        try await nio.shutdownGracefully()
    }

    /// Write promises complete in order even if a promise callback writes and flushes (NIO: inFlushNow guard).
    @Test(arguments: ["nio", "loomio"]) func writePromisesCompleteInOrder(_ which: String) async throws {
        let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await greeterServer(nio, greeting: nil, close: false)
        let client: Channel =
            which == "nio"
            ? try await ClientBootstrap(group: nio).connect(to: server.localAddress!).get()
            : try await IOClientBootstrap(group: io.next()).connect(to: server.localAddress!).get()
        let order = try await client.eventLoop.submit {
            var order: [Int] = []
            let p1 = client.eventLoop.makePromise(of: Void.self)
            let p2 = client.eventLoop.makePromise(of: Void.self)
            let p3 = client.eventLoop.makePromise(of: Void.self)
            p1.futureResult.whenSuccess {
                order.append(1)
                client.writeAndFlush(ByteBuffer(string: "c"), promise: p3)
            }
            p2.futureResult.whenSuccess { order.append(2) }
            p3.futureResult.whenSuccess { order.append(3) }
            client.write(ByteBuffer(string: "a"), promise: p1)
            client.write(ByteBuffer(string: "b"), promise: p2)
            client.flush()
            return order
        }.get()
        #expect(order == [1, 2, 3], "\(which): \(order)")
        try await client.close().get()
        try await server.close().get()
        try await io.shutdownGracefully()
        try await nio.shutdownGracefully()
    }

    /// A listener on NIOPosix ("nio") or LoomIO whose children get `option` and `handler`.
    static func server<Option: ChannelOption>(
        _ which: String, nio: EventLoopGroup, io: IOEventLoopGroup, option: Option, value: Option.Value,
        _ handler: ChannelHandler & Sendable
    ) async throws -> Channel {
        let initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) }
        }
        if which == "nio" {
            return try await ServerBootstrap(group: nio).childChannelOption(option, value: value).childChannelInitializer(initializer)
                .bind(host: "127.0.0.1", port: 0).get()
        }
        return try await IOServerBootstrap(group: io).childChannelOption(option, value: value).childChannelInitializer(initializer)
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// The connect's promise is kept before `channelActive`, as NIO does.
    @Test(arguments: ["nio", "loomio"]) func connectPromiseBeforeChannelActive(_ which: String) async throws {
        let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await greeterServer(nio, greeting: nil, close: false)
        let seen = Seen()
        let loop: EventLoop = which == "nio" ? nio.next() : io.next()
        let client: Channel = try await loop.flatSubmit {
            let init_: @Sendable (Channel) -> EventLoopFuture<Void> = { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(seen) }
            }
            let f = which == "nio" ? ClientBootstrap(group: loop).channelInitializer(init_).connect(to: server.localAddress!)
                : IOClientBootstrap(group: loop).channelInitializer(init_).connect(to: server.localAddress!)
            return f.map { ch in seen.events.withLockedValue { $0.append("connected") }; return ch }
        }.get()
        // Read on the loop, after what the connect set off there.
        let order = try await loop.submit { seen.events.withLockedValue { $0 } }.get()
        #expect(order == ["connected", "active"], "\(which)")
        try await client.close().get()
        try await server.close().get()
        try await io.shutdownGracefully()
        try await nio.shutdownGracefully()
    }

    @Test func secondShutdownReturns() async throws {
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        try await io.shutdownGracefully()
        let done = NIOLockedValueBox(false)
        io.shutdownGracefully(queue: .global()) { _ in done.withLockedValue { $0 = true } }
        let returned = await Self.waitFor(1000) { done.withLockedValue { $0 } }
        #expect(returned, "second shutdownGracefully never calls back")
    }

    /// Run alone: a bind that fails drops an IOServerChannel whose closePromise was never completed.
    @Test func bindToAPortInUseFails() async throws {
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let first = try await IOServerBootstrap(group: io).bind(host: "127.0.0.1", port: 0).get()
        await #expect(throws: (any Error).self) {
            try await IOServerBootstrap(group: io).bind(host: "127.0.0.1", port: first.localAddress!.port!).get()
        }
        try await first.close().get()
        try await io.shutdownGracefully()
    }

    /// Run alone: an option the channel refuses drops an IOStreamChannel with its closePromise pending.
    @Test func refusedClientOptionFails() async throws {
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        await #expect(throws: (any Error).self) {
            try await IOClientBootstrap(group: io.next()).channelOption(.allocator, value: ByteBufferAllocator())
                .connect(host: "127.0.0.1", port: 9).get()
        }
        try await io.shutdownGracefully()
    }
}

extension IOChannelSemanticsTests {
    static func openFDs() -> Int { (try? FileManagerShim.count()) ?? -1 }
    enum FileManagerShim {
        static func count() throws -> Int {
            guard let dir = opendir("/proc/self/fd") else { return -1 }
            defer { closedir(dir) }
            var n = 0
            while readdir(dir) != nil { n += 1 }
            return n
        }
    }

    @Test func refusedClientOptionLeaksNoFD() async throws {
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let before = Self.openFDs()
        // Other suites open descriptors meanwhile: a leak shows as one per attempt, far above that.
        for _ in 0..<400 {
            _ = try? await IOClientBootstrap(group: io.next()).channelOption(.allocator, value: ByteBufferAllocator())
                .connect(host: "127.0.0.1", port: 9).get()
        }
        let after = Self.openFDs()
        #expect(after - before < 200, "fds before \(before), after \(after)")
        try await io.shutdownGracefully()
    }
}

extension IOChannelSemanticsTests {
    /// Reads paused (autoRead off, nobody calls read()); the peer resets the connection.
    @Test(arguments: ["nio", "loomio"], [true, false]) func aResetIsNoticedWhileReadsArePaused(_ which: String, _ reset: Bool) async throws {
        let seen = Seen()
        let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await Self.server(which, nio: nio, io: io, option: .autoRead, value: false, seen)
        let port = server.localAddress!.port!
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port).bigEndian
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        _ = await Self.waitFor(1000) { seen.events.withLockedValue { $0.contains("active") } }
        if reset {
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        }
        close(fd)
        let closed = await Self.waitFor(1500) { seen.inactive.withLockedValue { $0 } }
        #expect(closed, "\(which) reset=\(reset): peer gone, channel still open")
        try await server.close().get()
        try await io.shutdownGracefully()
        try await nio.shutdownGracefully()
    }
}

extension IOChannelSemanticsTests {
    /// A file region over a file truncated after the region was made: sendfile returns 0.
    @Test func aTruncatedFileRegionDoesNotHang() async throws {
        let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let server = try await greeterServer(nio, greeting: nil, close: false)
        let client = try await IOClientBootstrap(group: io.next()).connect(to: server.localAddress!).get()
        let path = "/tmp/loomio-trunc-\(getpid())"
        let f = fopen(path, "w")!; fputs(String(repeating: "x", count: 100_000), f); fclose(f)
        defer { unlink(path) }
        let handle = try Self.openFile(path)
        defer { try? handle.close() }
        truncate(path, 0)
        let done = NIOLockedValueBox(false)
        client.writeAndFlush(FileRegion(fileHandle: handle, readerIndex: 0, endIndex: 100_000)).whenComplete { _ in done.withLockedValue { $0 = true } }
        let completed = await Self.waitFor(1500) { done.withLockedValue { $0 } }
        #expect(completed, "write promise of a truncated file region never completes")
        // The failed write closed the channel.
        try await client.closeFuture.get()
        try await server.close().get()
        try await io.shutdownGracefully()
        try await nio.shutdownGracefully()
    }
}

extension IOChannelSemanticsTests {
    static func openFile(_ path: String) throws -> NIOFileHandle { try NIOFileHandle(_deprecatedPath: path) }
}
