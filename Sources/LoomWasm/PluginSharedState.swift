import Synchronization

/// What every instance of one plugin shares across event loops: shared data (a key-value
/// store with compare-and-swap), shared queues and metrics. Proxy-Wasm makes these the
/// way instances on different threads talk, so they are the one place plugins take a lock
/// (held for a dictionary operation, never across a guest call).
///
/// Kept per plugin name for the life of the process, as Envoy keeps them per VM id: a
/// reload that keeps the plugin keeps its data.
final class PluginSharedState: Sendable {
    private static let registry = Mutex<[String: PluginSharedState]>([:])

    static func forPlugin(_ name: String) -> PluginSharedState {
        registry.withLock { plugins in
            if let state = plugins[name] { return state }
            let state = PluginSharedState()
            plugins[name] = state
            return state
        }
    }

    private struct Entry {
        var value: [UInt8]
        var cas: UInt32
    }

    private let data = Mutex<(entries: [String: Entry], nextCAS: UInt32, bytes: Int)>(([:], 1, 0))
    /// Bounds: one value (a plugin is not a cache for large objects), one key, and every
    /// key and value together.
    static let maxValueBytes = 1024 * 1024
    static let maxKeyBytes = 1024
    static let maxTotalBytes = 64 * 1024 * 1024

    let queues = SharedQueues()
    let metrics = PluginMetrics()
    /// Time spent in the guest, calls made and calls failed, by every instance.
    let busyNanoseconds = Atomic<Int>(0)
    let calls = Atomic<Int>(0)
    let failures = Atomic<Int>(0)

    /// The value of `key` and its CAS token.
    func get(_ key: String) -> (value: [UInt8], cas: UInt32)? {
        data.withLock { state in state.entries[key].map { ($0.value, $0.cas) } }
    }

    enum SetResult { case ok, casMismatch, full }

    /// Stores `value` under `key`. A non-zero `cas` must equal the key's current token
    /// (else `casMismatch`); a key not there yet takes any token, as in Envoy. `full` when
    /// the plugin's data would pass `maxTotalBytes`.
    func set(_ key: String, _ value: [UInt8], cas: UInt32) -> SetResult {
        data.withLock { state in
            let current = state.entries[key]
            if cas != 0, let current, current.cas != cas { return .casMismatch }
            let bytes = state.bytes - (current.map { key.utf8.count + $0.value.count } ?? 0) + key.utf8.count + value.count
            guard bytes <= Self.maxTotalBytes else { return .full }
            state.bytes = bytes
            state.entries[key] = Entry(value: value, cas: state.nextCAS)
            state.nextCAS = state.nextCAS == .max ? 1 : state.nextCAS + 1
            return .ok
        }
    }
}

/// Shared queues: named FIFOs any instance of the plugin may enqueue to; the instance that
/// registered a queue last is told (`proxy_on_queue_ready`) on its own event loop when an
/// item arrives, as the last registrant is in Envoy.
final class SharedQueues: Sendable {
    /// Delivers "queue `id` has an item" to the registrant's loop.
    typealias Notify = @Sendable (_ queueID: UInt32) -> Void

    private struct Queue {
        var name: String
        var items: [[UInt8]] = []
        var notify: Notify?
    }

    /// Bounds: queues per plugin, items per queue (an enqueue past it fails rather than
    /// growing without end).
    static let maxQueues = 1_000
    static let maxItems = 10_000
    static let maxItemBytes = 1024 * 1024

    private let state = Mutex<(queues: [UInt32: Queue], nextID: UInt32)>(([:], 1))

    /// The id of queue `name`, created if new, with `notify` as its registrant.
    func register(_ name: String, notify: @escaping Notify) -> UInt32? {
        state.withLock { state in
            if let id = state.queues.first(where: { $0.value.name == name })?.key {
                state.queues[id]!.notify = notify
                return id
            }
            guard state.queues.count < Self.maxQueues else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.queues[id] = Queue(name: name, notify: notify)
            return id
        }
    }

    func resolve(_ name: String) -> UInt32? {
        state.withLock { state in state.queues.first { $0.value.name == name }?.key }
    }

    enum EnqueueResult { case ok, notFound, full }

    func enqueue(_ id: UInt32, _ item: [UInt8]) -> EnqueueResult {
        let (result, notify) = state.withLock { state -> (EnqueueResult, Notify?) in
            guard let count = state.queues[id]?.items.count else { return (.notFound, nil) }
            guard count < Self.maxItems, item.count <= Self.maxItemBytes else { return (.full, nil) }
            state.queues[id]!.items.append(item)
            return (.ok, state.queues[id]!.notify)
        }
        // Outside the lock: the notification hops to another loop.
        notify?(id)
        return result
    }

    enum DequeueResult { case item([UInt8]), empty, notFound }

    func dequeue(_ id: UInt32) -> DequeueResult {
        state.withLock { state in
            guard let count = state.queues[id]?.items.count else { return .notFound }
            guard count > 0 else { return .empty }
            return .item(state.queues[id]!.items.removeFirst())
        }
    }
}
