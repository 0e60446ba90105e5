import Synchronization

/// Whether a supervised upstream's process is ready (`ProcessSupervisor` sets it; every
/// event loop reads it when picking an endpoint). Not ready: none of the upstream's
/// endpoints is picked, and requests get 503 with `Retry-After`.
///
/// One per supervised upstream, kept across reloads by name (`ProxySnapshot.Upstream`).
final class ProcessGate: Sendable {
    private let ready = Atomic<Bool>(false)

    var isReady: Bool { ready.load(ordering: .relaxed) }

    func set(ready value: Bool) {
        ready.store(value, ordering: .relaxed)
    }
}
