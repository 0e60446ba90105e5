import Synchronization

/// One configured plugin's instances: one `PluginVM` per event loop, created ahead of traffic
/// (`prepare`) or on first use, and replaced after a failure.
///
/// Slot `i` is touched only on event loop `i` (requests carry their loop's index), so taking
/// an instance takes no lock. A configuration snapshot owns its runtimes: a reload builds new
/// ones, and requests that started on the old snapshot finish on the old instances.
public final class PluginRuntime: @unchecked Sendable {
    public let plugin: PluginContext
    private let slots: [Slot]
    /// Instances replaced after a failure, over the runtime's life (for tests and metrics).
    private let replacements = Atomic<Int>(0)

    /// A loop's instance, and when a failed start may be retried.
    private final class Slot {
        var vm: PluginVM?
        var retryAfter: ContinuousClock.Instant?
    }

    /// A failed start is retried at most this often per loop (a plugin that refuses its
    /// configuration would otherwise be instantiated for every request).
    static let restartInterval = Duration.seconds(1)

    public init(plugin: PluginContext, loops: Int) {
        self.plugin = plugin
        slots = (0..<max(1, loops)).map { _ in Slot() }
    }

    public var replacedInstances: Int { replacements.load(ordering: .relaxed) }

    /// Starts loop `index`'s instance now, so the first request does not pay for it.
    /// Call on that loop.
    public func prepare(loop index: Int) {
        _ = vm(loop: index)
    }

    /// Loop `index`'s working instance: the current one, or a new one when there is none or
    /// the last one failed. Call on that loop.
    func vm(loop index: Int) -> Result<PluginVM, PluginLoadError> {
        guard slots.indices.contains(index) else { return .failure(.startFailed("no instance slot for event loop \(index)")) }
        let slot = slots[index]
        if let vm = slot.vm, vm.broken == nil { return .success(vm) }
        if slot.vm != nil {
            slot.vm = nil
            replacements.add(1, ordering: .relaxed)
        }
        let now = ContinuousClock.now
        if let retryAfter = slot.retryAfter, now < retryAfter {
            return .failure(.startFailed("the last start failed; retrying in at most \(Self.restartInterval)"))
        }
        do {
            let vm = try PluginVM(plugin: plugin)
            slot.vm = vm
            slot.retryAfter = nil
            return .success(vm)
        } catch {
            slot.retryAfter = now + Self.restartInterval
            plugin.log(.error, "instance failed to start: \(error)")
            return .failure(error)
        }
    }
}
