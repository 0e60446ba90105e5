import NIOCore

/// Runs Swift concurrency jobs on one NIO event loop: the admin API's requests run there
/// (`Task(executorPreference:)`), actors they call included, so the admin API answers even
/// when the global concurrency pool is busy or blocked.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
