import NIOCore

/// A task an `IOEventLoop` runs at a deadline. A class so that cancelling it can find it in
/// the queue: it knows its own place in the heap. Sendable only to be carried to its loop:
/// it is read and changed on the loop's thread alone.
final class IOTimer: @unchecked Sendable {
    let deadline: NIODeadline
    /// Breaks ties between equal deadlines: the earlier scheduled runs first, as in NIO.
    let sequence: UInt64
    let task: () -> Void
    /// Runs instead of `task` when the loop shuts down first (fails the task's promise).
    let dropped: () -> Void
    /// Its index in `IOTimerQueue.heap`, or nil once it ran or was cancelled.
    fileprivate(set) var index: Int?

    init(deadline: NIODeadline, sequence: UInt64, task: @escaping () -> Void, dropped: @escaping () -> Void) {
        self.deadline = deadline
        self.sequence = sequence
        self.task = task
        self.dropped = dropped
    }

    fileprivate func precedes(_ other: IOTimer) -> Bool {
        deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
    }
}

/// The loop's timers: a binary min-heap by deadline. Cancelling removes the timer at once
/// (O(log n)), so a task rescheduled again and again (an idle timeout pushed back on every
/// request) never leaves dead entries behind. Pure: the loop asks it when to wake and which
/// timers are due.
struct IOTimerQueue {
    private var heap: [IOTimer] = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var earliest: NIODeadline? { heap.first?.deadline }

    mutating func schedule(at deadline: NIODeadline, _ task: @escaping () -> Void, dropped: @escaping () -> Void = {}) -> IOTimer {
        let timer = IOTimer(deadline: deadline, sequence: nextSequence, task: task, dropped: dropped)
        nextSequence &+= 1
        timer.index = heap.count
        heap.append(timer)
        siftUp(heap.count - 1)
        return timer
    }

    /// Removes `timer` if it is still waiting; false if it already ran or was cancelled.
    @discardableResult
    mutating func cancel(_ timer: IOTimer) -> Bool {
        guard let index = timer.index, index < heap.count, heap[index] === timer else { return false }
        remove(at: index)
        return true
    }

    /// The earliest timer if it is due at `now`, taken out of the queue.
    mutating func popDue(now: NIODeadline) -> IOTimer? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        remove(at: 0)
        return first
    }

    /// How long epoll may sleep: until the earliest deadline, rounded up to a whole
    /// millisecond (epoll's unit) so a timer never fires early; -1 (forever) with none.
    func timeoutMilliseconds(now: NIODeadline) -> Int32 {
        guard let earliest else { return -1 }
        if earliest <= now { return 0 }
        let nanoseconds = (earliest - now).nanoseconds
        let milliseconds = (nanoseconds + 999_999) / 1_000_000
        return Int32(clamping: milliseconds)
    }

    /// Takes every timer out (the loop is shutting down), without running them: the caller
    /// calls their `dropped`.
    mutating func removeAll() -> [IOTimer] {
        let all = heap
        for timer in all { timer.index = nil }
        heap.removeAll()
        return all
    }

    private mutating func remove(at index: Int) {
        heap[index].index = nil
        let last = heap.removeLast()
        guard index < heap.count else { return }
        heap[index] = last
        last.index = index
        if index > 0 && last.precedes(heap[(index - 1) / 2]) {
            siftUp(index)
        } else {
            siftDown(index)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let smaller = right < heap.count && heap[right].precedes(heap[left]) ? right : left
            guard heap[smaller].precedes(heap[parent]) else { return }
            swapAt(parent, smaller)
            parent = smaller
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        heap[a].index = a
        heap[b].index = b
    }
}
