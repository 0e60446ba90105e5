import NIOCore
import Testing

@testable import LoomIO

@Suite struct IOTimerQueueTests {
    private func drain(_ queue: inout IOTimerQueue, at now: NIODeadline) -> [Int] {
        var order: [Int] = []
        while let timer = queue.popDue(now: now) {
            timer.task()
            order.append(order.count)
        }
        return order
    }

    @Test func dueTimersComeOutByDeadlineThenByScheduling() {
        var queue = IOTimerQueue()
        var ran: [String] = []
        let base = NIODeadline.uptimeNanoseconds(1_000_000)
        _ = queue.schedule(at: base + .milliseconds(30)) { ran.append("c") }
        _ = queue.schedule(at: base + .milliseconds(10)) { ran.append("a") }
        _ = queue.schedule(at: base + .milliseconds(20)) { ran.append("b1") }
        _ = queue.schedule(at: base + .milliseconds(20)) { ran.append("b2") }
        _ = queue.schedule(at: base + .milliseconds(40)) { ran.append("late") }
        _ = drain(&queue, at: base + .milliseconds(30))
        #expect(ran == ["a", "b1", "b2", "c"])
        #expect(queue.count == 1)
    }

    @Test func aCancelledTimerLeavesAtOnceAndNeverRuns() {
        var queue = IOTimerQueue()
        var ran: [Int] = []
        let base = NIODeadline.uptimeNanoseconds(1_000_000)
        let timers = (0..<50).map { i in queue.schedule(at: base + .milliseconds(Int64(i))) { ran.append(i) } }
        for (i, timer) in timers.enumerated() where i % 3 == 0 {
            let removed = queue.cancel(timer)
            #expect(removed)
        }
        #expect(queue.count == 50 - 17)
        let again = queue.cancel(timers[0])
        #expect(!again, "cancelling twice finds nothing")
        _ = drain(&queue, at: base + .seconds(1))
        #expect(ran == (0..<50).filter { $0 % 3 != 0 })
        let afterRunning = queue.cancel(timers[1])
        #expect(!afterRunning, "a timer that ran cannot be cancelled")
    }

    @Test func theSleepIsRoundedUpToAWholeMillisecond() {
        var queue = IOTimerQueue()
        let now = NIODeadline.uptimeNanoseconds(5_000_000)
        #expect(queue.timeoutMilliseconds(now: now) == -1)
        let timer = queue.schedule(at: now + .nanoseconds(1)) {}
        #expect(queue.timeoutMilliseconds(now: now) == 1)
        queue.cancel(timer)
        _ = queue.schedule(at: now + .microseconds(2_500)) {}
        #expect(queue.timeoutMilliseconds(now: now) == 3)
        #expect(queue.timeoutMilliseconds(now: now + .milliseconds(3)) == 0)
    }
}
