import NIOCore
import NIOEmbedded
import Testing

@testable import LoomIO

@Suite struct IOWriteQueueTests {
    private let loop = EmbeddedEventLoop()

    private func buffer(_ text: String) -> IOData { .byteBuffer(ByteBuffer(string: text)) }

    @Test func onlyFlushedWritesAreOffered() {
        var queue = IOWriteQueue()
        queue.append(buffer("abc"), promise: nil)
        #expect(!queue.hasFlushed)
        queue.markFlushed()
        queue.append(buffer("de"), promise: nil)
        #expect(queue.bytes == 5)
        let offered = queue.withFlushedBuffers(limit: 8) { $0.count }
        #expect(offered == 1)
    }

    @Test func aPartialWriteKeepsTheRestAndSucceedsOnlyWholeWrites() {
        var queue = IOWriteQueue()
        let first = loop.makePromise(of: Void.self)
        let second = loop.makePromise(of: Void.self)
        queue.append(buffer("hello"), promise: first)
        queue.append(buffer("world"), promise: second)
        queue.markFlushed()
        var done: [EventLoopPromise<Void>] = []
        queue.consume(7, done: &done)
        #expect(done.count == 1 && done[0].futureResult === first.futureResult)
        #expect(queue.bytes == 3)
        guard case .byteBuffer(let rest) = queue.first else {
            Issue.record("expected the rest of the second buffer")
            return
        }
        #expect(String(buffer: rest) == "rld")
        queue.consume(3, done: &done)
        #expect(done.count == 2 && queue.isEmpty && !queue.hasFlushed)
        for promise in done { promise.succeed() }
    }

    @Test func anEmptyWriteCompletesWithoutBytes() {
        var queue = IOWriteQueue()
        let promise = loop.makePromise(of: Void.self)
        queue.append(.byteBuffer(ByteBuffer()), promise: promise)
        queue.markFlushed()
        var done: [EventLoopPromise<Void>] = []
        queue.consume(0, done: &done)
        #expect(done.count == 1 && queue.isEmpty)
        promise.succeed()
    }

    @Test func removingAllHandsBackEveryPromise() {
        var queue = IOWriteQueue()
        let promises = (0..<3).map { _ in loop.makePromise(of: Void.self) }
        for promise in promises { queue.append(buffer("x"), promise: promise) }
        queue.append(buffer("y"), promise: nil)
        queue.markFlushed()
        let failed = queue.removeAll()
        #expect(failed.count == 3 && queue.isEmpty && queue.bytes == 0 && !queue.hasFlushed)
        for promise in failed { promise.fail(ChannelError.ioOnClosedChannel) }
    }

    @Test func aFileRegionEndsARunOfBuffers() throws {
        var queue = IOWriteQueue()
        queue.append(buffer("a"), promise: nil)
        queue.append(buffer("b"), promise: nil)
        let handle = try NIOFileHandle(_deprecatedPath: "/dev/null")
        defer { try? handle.close() }
        queue.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: 0, endIndex: 0)), promise: nil)
        queue.append(buffer("c"), promise: nil)
        queue.markFlushed()
        #expect(queue.withFlushedBuffers(limit: 8) { $0.count } == 2)
        #expect(queue.withFlushedBuffers(limit: 1) { $0.count } == 1)
    }
}
