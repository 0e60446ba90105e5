import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import LoomProxy

/// Flushes gathered and the clock read once per loop tick: on an embedded loop, whose `run()`
/// ends the tick, and where a real tick must pass, on a real one.
@Suite struct LoopTickTests {
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

    @Test func everyFlushWaitsForTheEndOfTheTickAndGoesOnce() {
        let loop = EmbeddedEventLoop()
        let tick = LoopTick(eventLoop: loop)
        let log = Log()
        let a = Connection("a", log), b = Connection("b", log), c = Connection("c", log)

        tick.flush(a)
        tick.flush(b)
        tick.flush(c)
        tick.flush(b)  // held already: not twice
        #expect(log.flushed.isEmpty)
        #expect(tick.heldCount == 3)
        #expect(a.flushHeld && b.flushHeld && c.flushHeld)

        loop.run()  // the end of the tick
        #expect(log.flushed == ["a", "b", "c"])
        #expect(tick.heldCount == 0)
        #expect(!a.flushHeld && !b.flushHeld && !c.flushHeld)

        // A new tick holds a connection seen in the last one again.
        tick.flush(b)
        #expect(log.flushed == ["a", "b", "c"])
        loop.run()
        #expect(log.flushed == ["a", "b", "c", "b"])
    }

    @Test func aFlushMadeWhileTheHeldOnesGoOutGoesOutInTheSameTick() {
        let loop = EmbeddedEventLoop()
        let tick = LoopTick(eventLoop: loop)
        let log = Log()
        let held = Connection("held", log), late = Connection("late", log)
        // Flushing `held` makes `late` writable-and-written, say, and asks for its flush.
        held.then = { tick.flush(late) }

        tick.flush(held)
        loop.run()
        #expect(log.flushed == ["held", "late"])
        #expect(tick.heldCount == 0)
        #expect(!late.flushHeld)
    }

    @Test func aConnectionWithNothingWrittenIsNotHeld() {
        let loop = EmbeddedEventLoop()
        let tick = LoopTick(eventLoop: loop)
        let log = Log()
        let idle = Connection("idle", log)
        idle.needsFlush = false

        tick.flush(idle)
        #expect(!idle.flushHeld)
        #expect(tick.heldCount == 0)
        loop.run()
        #expect(log.flushed.isEmpty)
    }

    @Test func aLoopThatDoesNotGatherFlushesEachAtOnce() {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let log = Log()
        loop.flushSoon(Connection("a", log))
        loop.flushSoon(Connection("b", log))
        #expect(log.flushed == ["a", "b"])
    }

    /// The clock on a real loop, where ticks end by themselves: one reading for the whole tick
    /// however much time passes in it, a fresh reading when asked for one, and a new reading
    /// in the next tick.
    @Test func theClockIsReadOncePerTick() throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let bound = try loop.submit { NIOLoopBound(LoopTick(eventLoop: loop), eventLoop: loop) }.wait()
        let (first, again, fresh, afterFresh) = try loop.submit {
            let tick = bound.value
            let first = tick.now
            usleep(2_000)
            let again = tick.now
            let fresh = tick.freshNow()
            return (first, again, fresh, tick.now)
        }.wait()
        #expect(again == first)
        #expect(fresh >= first + .milliseconds(2))
        #expect(afterFresh == fresh)

        let nextTick = try loop.submit { bound.value.now }.wait()
        #expect(nextTick > fresh)
    }

    /// `LoopContext.now`, what the request path reads, is the tick's reading on a loop with one.
    @Test func aLoopsClockIsItsTicks() throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let loop = LoopContext(eventLoop: eventLoop, perTick: true)
        let (first, again) = try eventLoop.submit {
            let first = loop.now
            usleep(2_000)
            return (first, loop.now)
        }.wait()
        #expect(again == first)
        #expect(try eventLoop.submit { loop.now }.wait() >= first + .milliseconds(2))
    }

    @Test func aLoopWithoutATickReadsTheClockEachTime() {
        let embedded = EmbeddedEventLoop()
        let loop = LoopContext(eventLoop: embedded)
        let before = loop.now
        embedded.advanceTime(by: .milliseconds(5))
        #expect(loop.now == before + .milliseconds(5))
    }

    @Test func theTicksEndForgetsItsReading() {
        let embedded = EmbeddedEventLoop()
        let loop = LoopContext(eventLoop: embedded, perTick: true)
        let before = loop.now
        // Advancing the embedded loop's time runs its due tasks: the tick's end among them.
        embedded.advanceTime(by: .milliseconds(5))
        #expect(loop.now == before + .milliseconds(5))
    }
}
