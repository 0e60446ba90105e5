import Synchronization

/// Requests in flight to one endpoint, counted across all event loops for the `least_conn`
/// and `power_of_two` balancers. Relaxed atomics: a pick needs a recent count, not a
/// synchronized one, and the request path takes no lock.
///
/// An `Exchange` acquires when it gets its endpoint and releases exactly once: when it
/// finishes, or in its deinit if it never finished (`Exchange.releaseInFlight`).
final class InFlightCounter: Sendable {
    private let count = Atomic<Int>(0)

    var current: Int { count.load(ordering: .relaxed) }

    func acquire() {
        count.add(1, ordering: .relaxed)
    }

    func release() {
        count.subtract(1, ordering: .relaxed)
    }
}
