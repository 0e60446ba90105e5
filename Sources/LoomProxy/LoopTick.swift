import NIOCore

/// A connection whose flushes a `LoopTick` may hold until the end of the loop tick.
protocol CoalescedFlushing: AnyObject {
    /// Whether anything was written since the last flush.
    var needsFlush: Bool { get }
    /// Set while the tick holds a flush of this connection, so it is held once.
    var flushHeld: Bool { get set }
    /// Flushes what was written since the last flush, if anything.
    func flushNow()
}

/// What one event loop's tick shares: the clock, read once, and the flushes held to its end.
///
/// **Flushes.** The tick's first flush goes at once, the others at the end of the tick (after
/// its I/O events). A flush is a `write(2)`, and a write to a peer that sleeps wakes it: on
/// loopback, and on any link faster than the proxy, the receiver's wake-up (an IPI and a
/// context switch on its core) is paid on the writer's core too. Flushing each connection as
/// soon as its bytes are ready spreads a busy tick's writes out, so the backend and the
/// clients sleep and wake again between them; writing them together wakes each peer about
/// once per tick. Measured on the small GET at 64 connections: about 1.6–2 µs less CPU per
/// request, about +8 % req/s (docs/BENCHMARKS.md, "Flushes gathered per loop tick"). The
/// tick's first flush is not held: a lone request on a quiet loop waits for no batch.
/// Only flushes on the request path come here (a request head upstream, the end of a read
/// batch, a finished response); a flush that must precede a close or a half-close is made
/// directly.
///
/// **Clock.** `now` reads the clock at its first use in a tick and returns that reading
/// until the tick ends, as nginx updates its time once per loop iteration: a small GET read
/// it six times, each a `clock_gettime` (docs/BENCHMARKS.md). The reading is at most one
/// tick old: deadlines come out that much earlier, and logged durations are measured in
/// whole ticks' readings. `freshNow` reads the clock again for what must not be early (the
/// timer wheel's wake).
///
/// Touched only on its loop.
final class LoopTick {
    private let eventLoop: EventLoop
    private var held: [any CoalescedFlushing] = []
    /// A flush went out in this tick already.
    private var flushed = false
    /// The clock as read in this tick, once read.
    private var reading: NIODeadline?
    /// `endTick` is scheduled.
    private var endScheduled = false

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The clock as first read in this tick.
    var now: NIODeadline {
        if let reading { return reading }
        return freshNow()
    }

    /// Reads the clock, and makes that the tick's reading.
    func freshNow() -> NIODeadline {
        let now = eventLoop.now
        reading = now
        scheduleEnd()
        return now
    }

    /// Flushes `target` now if it is the tick's first flush, else at the end of the tick.
    /// A target with nothing written is no flush at all: it leaves the tick's first to come.
    func flush(_ target: any CoalescedFlushing) {
        guard target.needsFlush, !target.flushHeld else { return }
        guard flushed else {
            flushed = true
            scheduleEnd()
            target.flushNow()
            return
        }
        target.flushHeld = true
        held.append(target)
    }

    /// How many flushes wait for the end of the tick.
    var heldCount: Int { held.count }

    private func endTick() {
        // A flush can re-enter (writability changes, an error closing a channel) and hold
        // another connection: the loop reads the count afresh.
        var index = 0
        while index < held.count {
            let target = held[index]
            target.flushHeld = false
            target.flushNow()
            index += 1
        }
        held.removeAll(keepingCapacity: true)
        flushed = false
        reading = nil
        endScheduled = false
    }

    private func scheduleEnd() {
        guard !endScheduled else { return }
        endScheduled = true
        // Immediate tasks run after the tick's I/O events, before the next wait. A closure
        // per tick, holding the tick strongly: a stored one would need a weak reference,
        // and an object weakly referenced pays a side-table lookup on every retain and
        // release, which the request path makes several times per request.
        eventLoop.assumeIsolated().execute { self.endTick() }
    }
}
