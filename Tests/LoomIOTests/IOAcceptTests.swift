import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import LoomIO

/// What an accepted channel starts with: its addresses (from `accept4` and the listener, or
/// asked of the kernel for a wildcard listener), the child socket options (set once on the
/// listener, which Linux copies into each accepted socket) and the child channel options.
@Suite(.serialized, .timeLimit(.minutes(1))) struct IOAcceptTests {
    /// Hands out the channel the server accepted, once it is active.
    final class Accepted: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let active: EventLoopPromise<Channel>
        init(_ promise: EventLoopPromise<Channel>) { active = promise }
        func channelActive(context: ChannelHandlerContext) { active.succeed(context.channel) }
    }

    /// Binds a bootstrap (`configure`d) on `host`, connects a client to it and returns the
    /// accepted channel, the client and the listener.
    private func acceptOne(
        _ group: IOEventLoopGroup, host: String, _ configure: (IOServerBootstrap) -> IOServerBootstrap = { $0 }
    ) async throws -> (accepted: Channel, client: Channel, server: Channel) {
        let promise = group.next().makePromise(of: Channel.self)
        let server = try await configure(IOServerBootstrap(group: group))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Accepted(promise)) }
            }
            .bind(host: host, port: 0).get()
        let port = try #require(server.localAddress?.port)
        let client = try await IOClientBootstrap(group: group.next()).connect(host: "127.0.0.1", port: port).get()
        return (try await promise.futureResult.get(), client, server)
    }

    private func withGroup(_ body: (IOEventLoopGroup) async throws -> Void) async throws {
        let group = try IOEventLoopGroup(numberOfThreads: 1)
        do {
            try await body(group)
            try await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    @Test(arguments: ["127.0.0.1", "0.0.0.0"]) func anAcceptedChannelKnowsBothEnds(_ host: String) async throws {
        try await withGroup { group in
            let (accepted, client, server) = try await acceptOne(group, host: host)
            // Its peer is the client's end, its own address the one the client connected to
            // (for the wildcard listener, the kernel's answer, not 0.0.0.0).
            #expect(accepted.remoteAddress == client.localAddress)
            #expect(accepted.localAddress == client.remoteAddress)
            #expect(accepted.localAddress?.ipAddress == "127.0.0.1")
            #expect(accepted.localAddress?.port == server.localAddress?.port)
            try await client.close().get()
            try await server.close().get()
        }
    }

    @Test(arguments: [nil, 1] as [Int?]) func childSocketOptionsReachEveryAcceptedSocket(_ noDelay: Int?) async throws {
        try await withGroup { group in
            let (accepted, client, server) = try await acceptOne(group, host: "127.0.0.1") { bootstrap in
                noDelay.map { bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: $0) } ?? bootstrap
            }
            // Read from the accepted socket itself: the option was set on the listener only.
            let value = try await accepted.getOption(.tcpOption(.tcp_nodelay)).get()
            #expect((value != 0) == (noDelay != nil))
            try await client.close().get()
            try await server.close().get()
        }
    }

    @Test func childChannelOptionsReachEveryAcceptedChannel() async throws {
        try await withGroup { group in
            let (accepted, client, server) = try await acceptOne(group, host: "127.0.0.1") { bootstrap in
                bootstrap.childChannelOption(.autoRead, value: false).childChannelOption(.maxMessagesPerRead, value: 7)
            }
            #expect(try await accepted.getOption(.autoRead).get() == false)
            #expect(try await accepted.getOption(.maxMessagesPerRead).get() == 7)
            try await client.close().get()
            try await server.close().get()
        }
    }

    @Test func aChildOptionItDoesNotImplementFailsTheBind() async throws {
        try await withGroup { group in
            await #expect(throws: ChannelError.operationUnsupported) {
                try await IOServerBootstrap(group: group)
                    .childChannelOption(.datagramVectorReadMessageCount, value: 4)
                    .bind(host: "127.0.0.1", port: 0).get()
            }
        }
    }

    /// A listener with accepts left waits to be resumed once per turn: an edge that reaches
    /// it first, in a later poll of the same turn, accepts from the same queue and does not
    /// ask again. Every connection is still accepted.
    @Test func aListenerAsksToBeResumedOncePerTurn() async throws {
        try await withGroup { group in
            let loop = try #require(group.next() as? IOEventLoop)
            let accepted = NIOLockedValueBox(0)
            let server = try await IOServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    accepted.withLockedValue { $0 += 1 }
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let listener = try #require(server as? IOServerChannel)
            let address = try #require(server.localAddress)
            let (waiting, clients) = try await loop.submit { () throws -> ([Int], [Int32]) in
                // Ten connections in the listener's queue before the loop hears of them.
                var clients: [Int32] = []
                for _ in 0..<10 {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                    guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
                    clients.append(fd)
                    address.withSockAddr { _ = connect(fd, $0, socklen_t($1)) }
                }
                try Self.waitForAcceptQueue(of: listener.fd, toHold: clients.count)
                listener.ready(IOEventLoopTurnTests.epollIn)  // accepts four, asks to be resumed
                let asked = loop.pendingCount
                listener.ready(IOEventLoopTurnTests.epollIn)  // an edge in a later poll: four more
                return ([asked, loop.pendingCount], clients)
            }.get()
            defer { for fd in clients { close(fd) } }
            #expect(waiting == [1, 1])
            for _ in 0..<200 where accepted.withLockedValue({ $0 }) < clients.count {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(accepted.withLockedValue { $0 } == clients.count)
            try await server.close().get()
        }
    }

    /// Waits (up to a second) until the listening socket's accept queue holds `count`
    /// connections: loopback finishes a handshake in softirq, which a loaded machine defers.
    /// For a listening socket, `tcpi_unacked` is the accept queue's length.
    static func waitForAcceptQueue(of fd: Int32, toHold count: Int) throws {
        for _ in 0..<1000 {
            var info = tcp_info()
            var length = socklen_t(MemoryLayout<tcp_info>.size)
            guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else {
                throw IOError(errnoCode: errno, reason: "getsockopt")
            }
            if info.tcpi_unacked >= count { return }
            usleep(1000)
        }
        Issue.record("the accept queue never held \(count) connections")
    }
}
