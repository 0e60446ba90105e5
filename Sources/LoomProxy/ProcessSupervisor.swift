#if canImport(Glibc)
import Glibc
#endif
import LoomConfig
import LoomSupervision
import Logging
import NIOCore

/// Runs the processes of supervised upstreams (`process:`): the I/O shell around one
/// `SupervisedProcess` machine per upstream. It spawns children (`ChildProcess`), probes
/// them until ready, opens and closes each upstream's `ProcessGate`, signals, and acts on
/// the machines' timers.
///
/// - Start: in dependency order; a process starts once everything it `depends_on` is ready.
/// - Ready: every endpoint of the upstream passes its health check (the upstream's own,
///   else a TCP connect), probed every 100 ms while the process starts.
/// - Shutdown (after traffic drained): nothing starts or restarts any more; then one by one
///   in reverse dependency order, each with its stop signal, then SIGKILL after its stop
///   timeout.
/// - Reload (`update`): a changed definition restarts only that process, gracefully (the old
///   child stopped as its own definition says); a new one starts once its dependencies are
///   ready; a removed one stops.
///
/// Everything happens on `eventLoop`; the public methods hop there.
final class ProcessSupervisor: @unchecked Sendable {
    /// What the admin API and `loom ctl processes` show of one process.
    struct Status: Sendable, Equatable {
        var name: String
        var state: SupervisedProcess.State
        var pid: Int32?
        var restarts: Int
        /// Seconds since it became ready, while it is.
        var uptimeSeconds: Int64?
        var lastExit: String?
    }

    private struct Child {
        /// The definition the next child is spawned from.
        var settings: ProcessSettings
        /// The definition the child there now was spawned from (its stop signal).
        var launched: ProcessSettings?
        var machine: SupervisedProcess
        var wake: Scheduled<Void>?
        var probing = false
        /// A reload removed it: dropped once stopped.
        var removed = false

        init(_ settings: ProcessSettings) {
            self.settings = settings
            machine = SupervisedProcess(policy: settings.policy)
        }

        var hasChild: Bool {
            switch machine.state {
            case .spawning, .starting, .running, .stopping: true
            default: false
            }
        }
    }

    private let eventLoop: EventLoop
    private let logger: Logger
    /// The upstream as the running configuration has it (endpoints, health check, gate).
    private let upstream: @Sendable (String) -> ProxySnapshot.Upstream?
    private var children: [String: Child] = [:]
    /// Names in start order.
    private var order: [String] = []
    private var dependencies: [String: [String]] = [:]
    /// Names still to stop, in order, while shutting down.
    private var stopQueue: [String] = []
    private var shuttingDown = false
    private var stopped: EventLoopPromise<Void>?

    init(eventLoop: EventLoop, logger: Logger, upstream: @escaping @Sendable (String) -> ProxySnapshot.Upstream?) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.upstream = upstream
    }

    /// The supervised upstreams of `configuration`, in start order (validation refused
    /// unknown dependencies and cycles).
    static func processes(of configuration: LoomConfiguration) -> [(name: String, settings: ProcessSettings)] {
        let supervised = configuration.upstreams.compactMap { upstream in upstream.process.map { (name: upstream.name, settings: $0) } }
        guard let order = try? StartOrder(supervised.map { ($0.name, $0.settings.dependsOn) }) else { return supervised }
        return order.names.compactMap { name in supervised.first { $0.name == name } }
    }

    // MARK: - Commands (any thread)

    /// Starts the processes of `configuration` (at loom's start).
    func start(_ configuration: LoomConfiguration) {
        update(configuration)
    }

    /// Applies a reloaded configuration.
    func update(_ configuration: LoomConfiguration) {
        let wanted = Self.processes(of: configuration)
        eventLoop.execute { self.apply(wanted) }
    }

    /// Restarts process `name` now (`loom ctl restart`): false when there is none.
    func restart(_ name: String) -> EventLoopFuture<Bool> {
        eventLoop.submit {
            // A process a reload removed is on its way out: a restart would bring it back.
            guard let child = self.children[name], !child.removed, !self.shuttingDown else { return false }
            self.logger.notice("restarting the process on request", metadata: ["process": .string(name)])
            self.run(name) { $0.restart(now: $1) }
            // One that never started still waits for its dependencies.
            self.startIfDependenciesReady(name)
            return true
        }
    }

    func statuses() -> EventLoopFuture<[Status]> {
        eventLoop.submit { self.order.compactMap { name in self.children[name].map { self.status(name, $0) } } }
    }

    /// Stops every process, dependents first, each within its stop timeout.
    func shutdown() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let promise = self.stopped ?? self.eventLoop.makePromise()
            if self.stopped == nil {
                self.stopped = promise
                self.shuttingDown = true
                // First, nothing (re)starts: not a process whose backoff ends, nor one that
                // crashes or exits while it waits for its turn to stop.
                for name in self.order { self.run(name) { $0.retire(now: $1) } }
                self.stopQueue = self.order.reversed()
                self.advanceShutdown()
            }
            return promise.futureResult
        }
    }

    // MARK: - On the loop

    private func apply(_ wanted: [(name: String, settings: ProcessSettings)]) {
        guard !shuttingDown else { return }
        let names = Set(wanted.map(\.name))
        for (name, child) in children where !names.contains(name) && !child.removed {
            children[name]?.removed = true
            logger.notice("process removed from the configuration: stopping it", metadata: ["process": .string(name)])
            run(name) { $0.stop(now: $1) }
        }
        order = wanted.map(\.name) + order.filter { !names.contains($0) && children[$0] != nil }
        dependencies = Dictionary(wanted.map { ($0.name, $0.settings.dependsOn) }, uniquingKeysWith: { $1 })
        for (name, settings) in wanted {
            if let existing = children[name] {
                guard existing.settings != settings || existing.removed else { continue }
                children[name]?.settings = settings
                children[name]?.removed = false
                // A running process restarts with it; one still waiting for its dependencies starts with it.
                logger.notice("process definition changed: applying it", metadata: ["process": .string(name)])
                run(name) { $0.restart(now: $1, policy: settings.policy) }
            } else {
                children[name] = Child(settings)
            }
        }
        for name in order { startIfDependenciesReady(name) }
    }

    /// Starts `name` if it never ran and what it depends on is ready.
    private func startIfDependenciesReady(_ name: String) {
        guard !shuttingDown, let child = children[name], child.machine.state == .idle else { return }
        let waiting = (dependencies[name] ?? []).filter { dependency in
            guard case .running = children[dependency]?.machine.state else { return true }
            return false
        }
        guard waiting.isEmpty else { return }
        run(name) { $0.start(now: $1) }
    }

    /// Feeds one event to `name`'s machine and carries out its actions.
    private func run(_ name: String, _ event: (inout SupervisedProcess, Int64) -> [SupervisedProcess.Action]) {
        guard children[name] != nil else { return }
        let actions = event(&children[name]!.machine, now)
        for action in actions { perform(action, name) }
        afterEvent(name)
    }

    private func perform(_ action: SupervisedProcess.Action, _ name: String) {
        guard let child = children[name] else { return }
        let metadata: Logger.Metadata = ["process": .string(name)]
        switch action {
        case .spawn:
            logger.info("starting the process", metadata: metadata.merging(["command": .string(child.settings.command)]) { $1 })
            children[name]?.launched = child.settings
            ChildProcess.launch(child.settings, name: name, logger: logger) { event in
                self.eventLoop.execute { self.childEvent(event, name) }
            }
        case .markReady:
            upstream(name)?.process?.set(ready: true)
            logger.notice("process ready: routing to it", metadata: metadata)
            for dependent in order where dependencies[dependent]?.contains(name) == true { startIfDependenciesReady(dependent) }
        case .markDown:
            upstream(name)?.process?.set(ready: false)
        case .signalStop(let pid):
            signal(pid, (child.launched ?? child.settings).stopSignal.number)
        case .kill(let pid):
            signal(pid, SIGKILL)
        case .wake(let at):
            children[name]?.wake?.cancel()
            children[name]?.wake = eventLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(UInt64(max(at, 0)) * 1_000_000)) {
                self.run(name) { $0.wake(now: $1) }
            }
        case .report(let message):
            logger.warning("\(message)", metadata: metadata)
        }
    }

    private func childEvent(_ event: ChildProcess.Event, _ name: String) {
        let metadata: Logger.Metadata = ["process": .string(name)]
        switch event {
        case .spawned(let pid):
            logger.info("process started", metadata: metadata.merging(["pid": .stringConvertible(pid)]) { $1 })
            run(name) { $0.spawned(pid: pid, now: $1) }
        case .spawnFailed(let reason):
            logger.error("could not start the process", metadata: metadata.merging(["error": .string(reason)]) { $1 })
            run(name) { $0.spawnFailed(reason, now: $1) }
        case .exited(let status):
            logger.info("process exited", metadata: metadata.merging(["status": .string(status.description)]) { $1 })
            run(name) { $0.exited(status, now: $1) }
        }
        if shuttingDown { advanceShutdown() }
    }

    /// What follows any event: probe a starting child, drop a removed one once it is down.
    private func afterEvent(_ name: String) {
        guard let child = children[name] else { return }
        if case .starting = child.machine.state, !child.probing {
            children[name]?.probing = true
            scheduleProbe(name)
        }
        if child.removed, !child.hasChild {
            child.wake?.cancel()
            children[name] = nil
            order.removeAll { $0 == name }
        }
    }

    // MARK: - Readiness

    private static let probeInterval = TimeAmount.milliseconds(100)

    private func scheduleProbe(_ name: String) {
        eventLoop.scheduleTask(in: Self.probeInterval) { self.probe(name) }
    }

    /// Checks every endpoint once; ready when all pass, else again after the interval.
    private func probe(_ name: String) {
        guard case .starting = children[name]?.machine.state, let upstream = upstream(name) else {
            children[name]?.probing = false
            return
        }
        let settings = upstream.config.health ?? HealthCheckSettings(kind: .tcp, timeout: .seconds(1))
        let probes = upstream.endpoints.indices.map { index in
            HealthProbe.run(settings, endpoint: upstream.endpoints[index], authority: upstream.authorities[index], tls: upstream.tls, on: eventLoop)
        }
        EventLoopFuture.whenAllSucceed(probes, on: eventLoop).whenComplete { result in
            guard case .starting = self.children[name]?.machine.state else {
                self.children[name]?.probing = false
                return
            }
            if case .success(let results) = result, results.allSatisfy({ $0 == .passed }) {
                self.children[name]?.probing = false
                self.run(name) { $0.ready(now: $1) }
            } else {
                self.scheduleProbe(name)
            }
        }
    }

    // MARK: - Shutdown

    /// Stops the first process of `stopQueue` and waits for its exit (`childEvent` calls
    /// again), then the next; succeeds `stopped` when none is left.
    private func advanceShutdown() {
        while let name = stopQueue.first {
            if children[name] != nil {
                // Also when it is already stopping: its exit must lead nowhere (a restart
                // under way would spawn it again).
                run(name) { $0.stop(now: $1) }
                // Its stop signal went (or it is still being spawned): wait for its exit.
                if children[name]?.hasChild == true { return }
                children[name]?.wake?.cancel()
            }
            stopQueue.removeFirst()
        }
        stopped?.succeed(())
    }

    // MARK: - Helpers

    private var now: Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000) }

    /// Signals the child's process group (it leads one from before its exec). Never the
    /// pid alone: once the group is gone, the pid may be another process's.
    private func signal(_ pid: Int32, _ number: Int32) {
        _ = kill(-pid, number)
    }

    private func status(_ name: String, _ child: Child) -> Status {
        let machine = child.machine
        var uptime: Int64?
        if case .running(_, let since) = machine.state { uptime = (now - since) / 1000 }
        return Status(name: name, state: machine.state, pid: machine.pid, restarts: machine.restarts,
                      uptimeSeconds: uptime, lastExit: machine.lastExit?.description)
    }
}
