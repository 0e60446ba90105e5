import Synchronization

/// Requests in flight to one endpoint, counted across all event loops for the `least_conn`
/// and `power_of_two` balancers. Relaxed atomics: a pick needs a recent count, not a
/// synchronized one, and the request path takes no lock.
final class InFlightCounter: Sendable {
    private let count = Atomic<Int>(0)

    var current: Int { count.load(ordering: .relaxed) }

    /// One more request; the `Lease` gives it back exactly once, when it is released.
    func acquire() -> Lease {
        count.add(1, ordering: .relaxed)
        return Lease(counter: self)
    }

    fileprivate func release() {
        count.subtract(1, ordering: .relaxed)
    }

    /// A request's claim on a counter, held by its `Exchange` and returned when the exchange
    /// ends however it ends (a class so that its deinit is that single point).
    final class Lease {
        private let counter: InFlightCounter

        fileprivate init(counter: InFlightCounter) {
            self.counter = counter
        }

        deinit {
            counter.release()
        }
    }
}
