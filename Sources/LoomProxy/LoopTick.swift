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
/// **Flushes.** Every flush on the request path waits for the end of the tick (after its I/O
/// events). A flush is a `write(2)`, and a write to a peer that sleeps wakes it: on loopback,
/// and on any link faster than the proxy, the receiver's wake-up (an IPI and a context switch
/// on its core) is paid on the writer's core too, and a peer woken for a few requests at a
/// time sleeps and wakes again for the next few. Writing the tick's flushes together wakes
/// each peer about once per tick. LoomIO's loop ends a tick's I/O once a poll finds no socket
/// ready or it has handled 256 events, so a tick lasts until the proxy has caught up with its
/// input: measured on the small GET at 64 connections, the backend then sleeps 0.047 times
/// per request instead of 0.076 (docs/BENCHMARKS.md, "A turn that runs until it has caught
/// up"). A lone request on a quiet loop waits for one more poll, a system call that finds
/// nothing; a flush asked for by a task (a filter resuming, say) waits for the next turn's
/// single poll. Only flushes on the request path come here (a request head upstream, the end
/// of a read batch, a finished response); a flush that must precede a close or a half-close
/// is made directly.
///
/// **Clock.** `now` reads the clock at its first use in a tick and returns that reading
/// until the tick ends, as nginx updates its time once per loop iteration: a small GET read
/// it six times, each a `clock_gettime` (docs/BENCHMARKS.md). The reading is at most one
/// tick old (at most 256 events' handling): deadlines come out that much earlier, and logged
/// durations are measured in whole ticks' readings. `freshNow` reads the clock again for
/// what must not be early (the timer wheel's wake).
///
/// Touched only on its loop.
final class LoopTick {
    private let eventLoop: EventLoop
    private var held: [any CoalescedFlushing] = []
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

    /// Flushes `target` at the end of the tick, once however often it is asked. A target with
    /// nothing written is no flush at all.
    func flush(_ target: any CoalescedFlushing) {
        guard target.needsFlush, !target.flushHeld else { return }
        target.flushHeld = true
        held.append(target)
        scheduleEnd()
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
