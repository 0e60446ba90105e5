import NIOCore
import NIOEmbedded
import Testing

@testable import LoomProxy

/// Flushes gathered per loop tick, on an embedded loop whose `run()` ends the tick.
@Suite struct FlushCoalescerTests {
    /// Records its flushes in a shared log; `then` runs inside its flush (re-entrancy).
    final class Connection: CoalescedFlushing {
        let name: String
        let log: Log
        var flushHeld = false
        var needsFlush = true
        var then: (() -> Void)?
        init(_ name: String, _ log: Log) {
            self.name = name
            self.log = log
        }
        func flushNow() {
            log.flushed.append(name)
            then?()
        }
    }

    final class Log {
        var flushed: [String] = []
    }

    @Test func theTicksFirstFlushGoesAtOnceTheOthersAtItsEndEachOnce() {
        let loop = EmbeddedEventLoop()
        let coalescer = FlushCoalescer(eventLoop: loop)
        let log = Log()
        let a = Connection("a", log), b = Connection("b", log), c = Connection("c", log)

        coalescer.flush(a)
        #expect(log.flushed == ["a"])
        coalescer.flush(b)
        coalescer.flush(c)
        coalescer.flush(b)  // held already: not twice
        #expect(log.flushed == ["a"])
        #expect(coalescer.heldCount == 2)
        #expect(b.flushHeld && c.flushHeld)

        loop.run()  // the end of the tick
        #expect(log.flushed == ["a", "b", "c"])
        #expect(coalescer.heldCount == 0)
        #expect(!b.flushHeld && !c.flushHeld)

        // A new tick: its first flush goes at once again, even for a connection seen before.
        coalescer.flush(b)
        #expect(log.flushed == ["a", "b", "c", "b"])
        coalescer.flush(a)
        #expect(log.flushed == ["a", "b", "c", "b"])
        loop.run()
        #expect(log.flushed == ["a", "b", "c", "b", "a"])
    }

    @Test func aFlushMadeWhileTheHeldOnesGoOutGoesOutInTheSameTick() {
        let loop = EmbeddedEventLoop()
        let coalescer = FlushCoalescer(eventLoop: loop)
        let log = Log()
        let first = Connection("first", log), held = Connection("held", log), late = Connection("late", log)
        // Flushing `held` makes `late` writable-and-written, say, and asks for its flush.
        held.then = { coalescer.flush(late) }

        coalescer.flush(first)
        coalescer.flush(held)
        loop.run()
        #expect(log.flushed == ["first", "held", "late"])
        #expect(coalescer.heldCount == 0)
        #expect(!late.flushHeld)
    }

    @Test func aConnectionWithNothingWrittenLeavesTheTicksFirstFlushToTheNext() {
        let loop = EmbeddedEventLoop()
        let coalescer = FlushCoalescer(eventLoop: loop)
        let log = Log()
        let idle = Connection("idle", log), busy = Connection("busy", log)
        idle.needsFlush = false

        coalescer.flush(idle)
        #expect(log.flushed.isEmpty && !idle.flushHeld)
        coalescer.flush(busy)
        #expect(log.flushed == ["busy"])
        #expect(coalescer.heldCount == 0)
    }

    @Test func aLoopThatDoesNotGatherFlushesEachAtOnce() {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let log = Log()
        loop.flushSoon(Connection("a", log))
        loop.flushSoon(Connection("b", log))
        #expect(log.flushed == ["a", "b"])
    }
}
