import NIOCore
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
    private let caller: (any PluginHTTPCaller)?
    /// Instances replaced after a failure, over the runtime's life (for tests and metrics).
    private let replacements = Atomic<Int>(0)
    /// Set by `retire`: instances started from now on never tick.
    private let retired = Atomic<Bool>(false)

    /// A loop's instance, the loop (known once `prepare` ran there), and when a failed
    /// start may be retried.
    private final class Slot: @unchecked Sendable {
        var vm: PluginVM?
        var eventLoop: (any EventLoop)?
        var retryAfter: ContinuousClock.Instant?
    }

    /// A failed start is retried at most this often per loop (a plugin that refuses its
    /// configuration would otherwise be instantiated for every request).
    static let restartInterval = Duration.seconds(1)

    /// `caller`: how the plugin's HTTP calls reach upstreams (nil: `proxy_http_call` is
    /// refused with BAD_ARGUMENT).
    public init(plugin: PluginContext, loops: Int, caller: (any PluginHTTPCaller)? = nil) {
        self.plugin = plugin
        self.caller = caller
        slots = (0..<max(1, loops)).map { _ in Slot() }
    }

    public var replacedInstances: Int { replacements.load(ordering: .relaxed) }

    /// Starts loop `index`'s instance now, so the first request does not pay for it, and
    /// gives it `eventLoop` for its timers, queues and calls. Call on that loop.
    public func prepare(loop index: Int, eventLoop: any EventLoop) {
        guard slots.indices.contains(index) else { return }
        slots[index].eventLoop = eventLoop
        _ = vm(loop: index)
    }

    /// A reload replaced or removed the plugin: the instances stop ticking, requests that
    /// started on the old snapshot finish on them, and then each root context ends
    /// (`on_done`, `on_delete`).
    public func retire() {
        retired.store(true, ordering: .relaxed)
        for slot in slots {
            slot.eventLoop?.execute { slot.vm?.retire() }
        }
    }

    /// Loop `index`'s working instance: the current one, or a new one when there is none or
    /// the last one failed. Call on that loop.
    func vm(loop index: Int) -> Result<PluginVM, PluginLoadError> {
        guard slots.indices.contains(index) else { return .failure(.startFailed("no instance slot for event loop \(index)")) }
        let slot = slots[index]
        // A retired instance whose root context has ended takes no new stream: a request of
        // the old snapshot that reaches the plugin only now gets a fresh (retiring) one.
        if let vm = slot.vm, vm.broken == nil, vm.root == .running { return .success(vm) }
        if slot.vm != nil {
            slot.vm = nil
            replacements.add(1, ordering: .relaxed)
        }
        let now = ContinuousClock.now
        if let retryAfter = slot.retryAfter, now < retryAfter {
            return .failure(.startFailed("the last start failed; retrying in at most \(Self.restartInterval)"))
        }
        do {
            let restart: @Sendable () -> Void = { [weak self] in
                // After the failing callback returns, on the same loop; a retired plugin has
                // no ticks or queues to keep going, so it starts one only for a request.
                slot.eventLoop?.execute {
                    guard let self, !self.retired.load(ordering: .relaxed) else { return }
                    _ = self.vm(loop: index)
                }
            }
            let environment = PluginVMEnvironment(eventLoop: slot.eventLoop, caller: caller, restart: restart)
            let vm = try PluginVM(plugin: plugin, environment: environment)
            // Started for a late request of the old snapshot: it ends after that request.
            if retired.load(ordering: .relaxed) { vm.retireAfterStreams() }
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
