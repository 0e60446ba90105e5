import Dispatch

/// Runs Swift concurrency jobs on a dispatch queue of its own rather than the shared
/// cooperative pool: asynchronous filter work (jwt-kit's actor) then never waits for a pool
/// thread that something else holds, and never holds one loom needs elsewhere.
///
/// Used as a task executor preference (`Task(executorPreference:)`): the task, and the
/// default actors it calls into, run here.
final class DispatchTaskExecutor: TaskExecutor, @unchecked Sendable {
    // Unchecked: the only state is a dispatch queue, itself thread-safe.
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
