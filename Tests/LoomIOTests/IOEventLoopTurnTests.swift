import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import LoomIO

/// The order of work within one turn of an `IOEventLoop`: a turn polls again until nothing is
/// ready before it runs its tasks, where the request path's held flushes go (`LoopTick`).
@Suite struct IOEventLoopTurnTests {
    /// One end of a socket pair, watched by the loop: logs its name when it reads bytes, then
    /// runs `onRead` (on the loop's thread).
    final class Watched: IOSelectable, @unchecked Sendable {
        let name: String
        let fd: Int32
        let log: NIOLockedValueBox<[String]>
        var onRead: (() -> Void)?
        init(_ name: String, fd: Int32, log: NIOLockedValueBox<[String]>) {
            self.name = name
            self.fd = fd
            self.log = log
        }
        func ready(_ events: UInt32) {
            var byte: UInt8 = 0
            // Not every edge brings bytes: the first says "writable".
            guard Glibc.read(fd, &byte, 1) == 1 else { return }
            log.withLockedValue { $0.append(name) }
            onRead?()
        }
        func resume() {}
        func closeForShutdown() {}
    }

    /// EPOLLIN (sys/epoll.h). Spelled out: importing CLoomIO, which declares epoll for
    /// LoomIO, into this test target would take the socket constants other test files get
    /// from Glibc (`SOCK_STREAM`) away from them in a clean build.
    static let epollIn: UInt32 = 0x001

    static func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
            throw IOError(errnoCode: errno, reason: "socketpair")
        }
        return (fds[0], fds[1])
    }

    /// Two watched sockets, `a` and `b`, on a loop of their own: reading a byte on `a` writes
    /// one to `b`'s peer (so `b` becomes ready after the poll that found `a`), after running
    /// `alsoOnA`. `start` is given the loop, the log and `a`'s peer, and returns once it has
    /// made `a` ready; the log is returned when it holds three entries (or after a second).
    static func turnLog(
        alsoOnA: @escaping (IOEventLoop, NIOLockedValueBox<[String]>) -> Void = { _, _ in },
        start: (IOEventLoop, NIOLockedValueBox<[String]>, Int32) -> Void
    ) async throws -> [String] {
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let loop = try #require(io.next() as? IOEventLoop)
        let (a, aPeer) = try socketPair()
        let (b, bPeer) = try socketPair()
        defer { for fd in [a, aPeer, b, bPeer] { close(fd) } }
        let log = NIOLockedValueBox<[String]>([])
        let first = Watched("a", fd: a, log: log), second = Watched("b", fd: b, log: log)
        first.onRead = {
            alsoOnA(loop, log)
            var byte: UInt8 = 1
            _ = Glibc.write(bPeer, &byte, 1)  // `b` is ready now, after this turn's poll
        }
        try await loop.submit {
            try loop.register(first, fd: a)
            try loop.register(second, fd: b)
        }.get()
        start(loop, log, aPeer)
        for _ in 0..<200 where log.withLockedValue({ $0.count }) < 3 {
            try await Task.sleep(for: .milliseconds(5))
        }
        try await loop.submit {
            loop.deregister(fd: a)
            loop.deregister(fd: b)
        }.get()
        try await io.shutdownGracefully()
        return log.withLockedValue { $0 }
    }

    /// A socket made ready by the handling of another, in the same turn, is handled before the
    /// turn's tasks: a loop that ran its tasks after each poll would log the task first.
    @Test func aSocketMadeReadyWithinTheTurnIsHandledBeforeItsTasks() async throws {
        let log = try await Self.turnLog(alsoOnA: { loop, log in
            loop.execute { log.withLockedValue { $0.append("task") } }
        }) { _, _, aPeer in
            var byte: UInt8 = 1
            #expect(Glibc.write(aPeer, &byte, 1) == 1)
        }
        #expect(log == ["a", "b", "task"])
    }

    /// A turn that begins with a task waiting (queued by a task) polls once: the waiting task
    /// runs after that poll's sockets, and a socket made ready meanwhile waits for the next
    /// turn, so work queued by a task never waits for a whole catch-up.
    @Test func aTurnThatBeginsWithATaskWaitingPollsOnce() async throws {
        let log = try await Self.turnLog { loop, log, aPeer in
            // From a task: `a` becomes ready, and a task queued now runs in the next turn,
            // which therefore begins with it waiting.
            loop.execute {
                var byte: UInt8 = 1
                _ = Glibc.write(aPeer, &byte, 1)
                loop.execute { log.withLockedValue { $0.append("task") } }
            }
        }
        #expect(log == ["a", "task", "b"])
    }

    /// Counts the bytes it is given and asks for the next read when a read batch ends.
    final class ReadsOnComplete: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = NIOLockedValueBox(0)
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let count = unwrapInboundIn(data).readableBytes
            bytes.withLockedValue { $0 += count }
        }
        func channelReadComplete(context: ChannelHandlerContext) { context.read() }
    }

    /// A channel waiting to be resumed, which an edge reaches first in a later poll of the
    /// same turn, does not ask again: it would be resumed twice, for a `recv` that finds the
    /// socket dry. The bytes left are all read by the resumes that follow.
    @Test func aChannelAsksToBeResumedOncePerTurn() async throws {
        let io = try IOEventLoopGroup(numberOfThreads: 1)
        let loop = try #require(io.next() as? IOEventLoop)
        let (mine, peer) = try Self.socketPair()
        defer { close(peer) }
        var options = IOStreamOptions()
        try options.set(ChannelOptions.autoRead, value: false)
        try options.set(ChannelOptions.maxMessagesPerRead, value: 1)
        try options.set(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64))
        let reader = ReadsOnComplete()
        let channel = try await loop.submit { [options] in
            let channel = IOStreamChannel(fd: mine, loop: loop, parent: nil, options: options)
            try channel.pipeline.syncOperations.addHandler(reader)
            channel.register0(promise: nil)
            channel.activateAccepted(local: nil, remote: nil)
            return channel
        }.get()

        let sent = [UInt8](repeating: 7, count: 1000)
        #expect(Glibc.write(peer, sent, sent.count) == sent.count)
        let waiting = try await loop.submit { () -> [Int] in
            // The edge that announces the bytes (whether or not epoll has reported it yet):
            // with no read asked for, it reads none of them.
            channel.ready(Self.epollIn)
            channel.read()  // the socket has bytes: resumed after this turn's events
            let asked = loop.pendingCount
            // An edge first: it reads 64 bytes, and the handler's next read asks again.
            channel.ready(Self.epollIn)
            return [asked, loop.pendingCount]
        }.get()
        #expect(waiting == [1, 1])
        for _ in 0..<200 where reader.bytes.withLockedValue({ $0 }) < sent.count {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(reader.bytes.withLockedValue { $0 } == sent.count)
        try await channel.close()
        try await io.shutdownGracefully()
    }
}
