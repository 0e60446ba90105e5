import NIOCore

/// Where an owner's entry sits in a `TimerWheel`: kept by the owner so that moving or removing
/// it needs no search.
struct TimerWheelSlot: Equatable {
    var bucket: Int
    var index: Int
    var deadline: NIODeadline
}

/// Something with at most one entry in a `TimerWheel`.
protocol TimerWheelOwner: AnyObject {
    var timerSlot: TimerWheelSlot? { get set }
}

/// The deadlines of many connections on one event loop, in a hashed timing wheel (Varghese &
/// Lauck, "Hashed and Hierarchical Timing Wheels").
///
/// Why not one event-loop timer per deadline: each `scheduleTask` allocates a task, a promise
/// and a closure and updates a heap, and each `cancel` scans that heap linearly (NIO removes
/// by search). A proxy sets and clears several deadlines per request on every connection, so
/// that was half of all allocations per request and grew with the connection count. Here
/// filing, moving and removing an entry is O(1) and allocates nothing once the buckets have
/// grown, and one event-loop timer per loop wakes the wheel (`LoopContext`).
///
/// Bucket `t % buckets` holds the entries whose deadline falls in tick `t`; a deadline further
/// away than one revolution shares the bucket and is kept until its own turn. An entry fires at
/// the first tick boundary at or after its deadline: up to one `resolution` late, never early.
/// Pure: time is whatever `now` the caller passes.
struct TimerWheel<Owner: TimerWheelOwner> {
    private struct Entry {
        let owner: Owner
        let deadline: NIODeadline
    }

    private var buckets: [[Entry]]
    private let resolution: Int64
    /// The last tick whose bucket has been examined.
    private var cursor: Int64
    private(set) var count = 0

    init(resolution: TimeAmount, buckets: Int, now: NIODeadline) {
        precondition(resolution.nanoseconds > 0 && buckets > 0)
        self.resolution = resolution.nanoseconds
        self.buckets = Array(repeating: [], count: buckets)
        self.cursor = Self.nanoseconds(now) / resolution.nanoseconds
    }

    /// Files `owner` to fire at `deadline`, replacing its previous entry. Returns the moment
    /// the wheel must be advanced for the entry to fire.
    @discardableResult
    mutating func schedule(_ owner: Owner, at deadline: NIODeadline) -> NIODeadline {
        remove(owner)
        // The first tick boundary at or after the deadline (capped so that tick arithmetic
        // cannot overflow for `distantFuture`); a deadline already passed fires at the next tick.
        let nanos = min(Self.nanoseconds(deadline), Int64.max / 2)
        let tick = max((nanos + resolution - 1) / resolution, cursor + 1)
        let bucket = bucketIndex(tick)
        owner.timerSlot = TimerWheelSlot(bucket: bucket, index: buckets[bucket].count, deadline: deadline)
        buckets[bucket].append(Entry(owner: owner, deadline: deadline))
        count += 1
        return .uptimeNanoseconds(UInt64(tick * resolution))
    }

    /// Takes `owner`'s entry out, if it has one.
    mutating func remove(_ owner: Owner) {
        guard let slot = owner.timerSlot else { return }
        owner.timerSlot = nil
        count -= 1
        let last = buckets[slot.bucket].removeLast()
        guard slot.index < buckets[slot.bucket].count else { return }
        // Swap-remove: the last entry takes the hole, and its owner learns its new index.
        buckets[slot.bucket][slot.index] = last
        last.owner.timerSlot?.index = slot.index
    }

    /// Examines every tick up to `now` and removes the entries that are due; returns their
    /// owners, in no particular order.
    mutating func advance(to now: NIODeadline) -> [Owner] {
        let nowTick = Self.nanoseconds(now) / resolution
        guard nowTick > cursor else { return [] }
        var due: [Owner] = []
        // After a long pause every bucket is examined once, not once per missed tick.
        let steps = min(nowTick - cursor, Int64(buckets.count))
        for step in 1...steps {
            let bucket = bucketIndex(cursor + step)
            var index = 0
            while index < buckets[bucket].count {
                let entry = buckets[bucket][index]
                if entry.deadline <= now {
                    remove(entry.owner)  // moves another entry into `index`: look at it next
                    due.append(entry.owner)
                } else {
                    index += 1  // a later revolution's entry
                }
            }
        }
        cursor = nowTick
        return due
    }

    /// When the next occupied bucket comes round, the moment to advance again; nil when the
    /// wheel is empty. An entry a revolution or more away costs one early look per revolution.
    var nextWake: NIODeadline? {
        guard count > 0 else { return nil }
        for step in 1...Int64(buckets.count) where !buckets[bucketIndex(cursor + step)].isEmpty {
            return .uptimeNanoseconds(UInt64((cursor + step) * resolution))
        }
        return nil
    }

    private func bucketIndex(_ tick: Int64) -> Int {
        Int(tick % Int64(buckets.count))
    }

    private static func nanoseconds(_ deadline: NIODeadline) -> Int64 {
        Int64(clamping: deadline.uptimeNanoseconds)
    }
}
