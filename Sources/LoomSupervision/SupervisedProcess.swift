/// One supervised child process (issue 11), as a pure state machine: the I/O shell spawns,
/// signals and reaps the child and reports what happened; this decides what to do next.
///
/// ```
///            start                spawned              ready
///   idle ───────────▶ spawning ───────────▶ starting ─────────▶ running
///                        │ spawn failed        │ exited / not     │ exited
///                        ▼                     ▼ ready in time    ▼
///                     (failure) ──▶ backoff ──(wake)──▶ spawning    (failure or exit)
///                                     │ too many restarts in the window
///                                     ▼
///                                 crashLoop            stop: stopping ──(exited)──▶ stopped
/// ```
///
/// - Restart policy: `always` restarts after any exit, `onFailure` after a non-zero status
///   or a signal, `never` leaves the process `exited`.
/// - Backoff: the n-th restart within `crashLoopWindowMillis` waits
///   `backoffInitialMillis × 2^(n-1)`, at most `backoffMaximumMillis`; restarts older than the
///   window are forgotten, so a process that ran for a while restarts quickly again.
/// - Crash loop: a restart that would be the `crashLoopRestarts + 1`-th within the window
///   is not made; the process stays down in `crashLoop` until `restart` (a person's
///   `loom ctl restart`, or a reload that changes it).
/// - A child that is not ready within `readyTimeoutMillis` is stopped and counts as a failure.
/// - `stop` sends the stop signal and, if the child has not exited by `stopTimeoutMillis`,
///   kills it. The timeout is that of the child being stopped: a reload's new policy
///   (`restart(now:policy:)`) applies from the next child on.
/// - `retire` (loom is shutting down): nothing starts or restarts any more; a child that
///   is there keeps running until its `stop`, so processes can stop in dependency order.
///
/// Time is milliseconds on a monotonic clock, passed in with every event; the machine never
/// reads a clock, sleeps or does I/O. It asks to be woken (`Action.wake`) when a deadline
/// falls due; `wake(now:)` then acts on whatever is due (a stale wake-up does nothing).
public struct SupervisedProcess: Sendable, Equatable {
    public enum RestartPolicy: String, Sendable, Equatable, CaseIterable {
        case always
        case onFailure = "on-failure"
        case never
    }

    /// How a child ended, as `waitpid` reports it.
    public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)
        /// Its end could not be observed (waiting for it failed; the shell killed it): a
        /// failure.
        case lost(String)

        var isFailure: Bool { self != .exited(0) }

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "killed by signal \(signal)"
            case .lost(let reason): "lost track of it (\(reason))"
            }
        }
    }

    public struct Policy: Sendable, Equatable {
        public var restart: RestartPolicy
        public var backoffInitialMillis: Int64
        public var backoffMaximumMillis: Int64
        /// At most this many restarts within `crashLoopWindowMillis`.
        public var crashLoopRestarts: Int
        public var crashLoopWindowMillis: Int64
        public var readyTimeoutMillis: Int64
        public var stopTimeoutMillis: Int64

        public init(
            restart: RestartPolicy = .always, backoffInitialMillis: Int64 = 1_000, backoffMaximumMillis: Int64 = 30_000,
            crashLoopRestarts: Int = 5, crashLoopWindowMillis: Int64 = 60_000, readyTimeoutMillis: Int64 = 30_000,
            stopTimeoutMillis: Int64 = 10_000
        ) {
            self.restart = restart
            self.backoffInitialMillis = max(0, backoffInitialMillis)
            self.backoffMaximumMillis = max(self.backoffInitialMillis, backoffMaximumMillis)
            self.crashLoopRestarts = max(0, crashLoopRestarts)
            self.crashLoopWindowMillis = max(1, crashLoopWindowMillis)
            self.readyTimeoutMillis = max(1, readyTimeoutMillis)
            self.stopTimeoutMillis = max(0, stopTimeoutMillis)
        }
    }

    public enum State: Sendable, Equatable {
        /// Never started, or `start` not called yet.
        case idle
        /// `spawn` asked for; the shell reports `spawned` or `spawnFailed`. `stopThen`: a
        /// `stop` or `restart` came meanwhile, so the child is stopped as soon as it is
        /// there, and its exit leads to `stopThen`.
        case spawning(stopThen: AfterStop?)
        /// Running, not ready yet (its socket does not accept, or its health check has not
        /// passed): not routed to. Stopped as failed at `readyBy`.
        case starting(pid: Int32, since: Int64, readyBy: Int64)
        /// Ready: routed to.
        case running(pid: Int32, since: Int64)
        /// Down after a failure or an exit; spawned again at `until`.
        case backoff(until: Int64)
        /// The stop signal was sent; killed at `killAt` if still there; `then` says what its
        /// exit leads to.
        case stopping(pid: Int32, killAt: Int64, then: AfterStop)
        /// Stopped on purpose (`stop`).
        case stopped
        /// Exited and the policy does not restart it.
        case exited
        /// Gave up: too many restarts within the window.
        case crashLoop
    }

    /// What a stopped child's exit leads to.
    public enum AfterStop: Sendable, Equatable {
        /// `stopped` (a shutdown, or a reload that removed the process).
        case stay
        /// A new child at once (`restart`).
        case start
        /// A failure, counted and backed off like a crash (it never became ready).
        case fail
    }

    /// What the shell must do, in order.
    public enum Action: Sendable, Equatable {
        /// Start the child (then report `spawned` or `spawnFailed`).
        case spawn
        /// The child is ready: route to its endpoints.
        case markReady
        /// The child is down or going down: stop routing to it.
        case markDown
        /// Send the configured stop signal to the child's process group.
        case signalStop(pid: Int32)
        /// SIGKILL the child's process group.
        case kill(pid: Int32)
        /// Call `wake(now:)` at this time (replaces any earlier request).
        case wake(at: Int64)
        /// Report, for the log: why the process is down and what happens next.
        case report(String)
    }

    /// The policy of the child there now (or of the next one, when there is none).
    public private(set) var policy: Policy
    /// A reload's new policy (`restart(now:policy:)`), taken up by the next spawn: until
    /// then the child there now, from the old definition, keeps its own stop timeout.
    private var nextPolicy: Policy?
    public private(set) var state: State = .idle
    /// `retire` was called: no more starts.
    public private(set) var retired = false
    /// Restarts made (not counting the first start), for the admin API.
    public private(set) var restarts = 0
    public private(set) var lastExit: ExitStatus?
    /// When recent restarts were made, oldest first; only those inside the window are kept.
    private var recentRestarts: [Int64] = []

    public init(policy: Policy) {
        self.policy = policy
    }

    /// The child's pid while there is one.
    public var pid: Int32? {
        switch state {
        case .starting(let pid, _, _), .running(let pid, _), .stopping(let pid, _, _): pid
        default: nil
        }
    }

    // MARK: - Events

    /// Starts the process (at loom's start, or once its dependencies are ready).
    public mutating func start(now: Int64) -> [Action] {
        guard !retired else { return [] }
        switch state {
        case .idle, .stopped, .exited:
            return spawn()
        default:
            return []
        }
    }

    public mutating func spawned(pid: Int32, now: Int64) -> [Action] {
        guard case .spawning(let stopThen) = state else { return [] }
        if let stopThen {
            let killAt = now + policy.stopTimeoutMillis
            state = .stopping(pid: pid, killAt: killAt, then: stopThen)
            return [.signalStop(pid: pid), .wake(at: killAt)]
        }
        let readyBy = now + policy.readyTimeoutMillis
        state = .starting(pid: pid, since: now, readyBy: readyBy)
        return [.wake(at: readyBy)]
    }

    /// The child could not be started at all (no such command, say): a failure like a crash.
    public mutating func spawnFailed(_ reason: String, now: Int64) -> [Action] {
        guard case .spawning(let stopThen) = state else { return [] }
        switch stopThen {
        case .stay:
            state = .stopped
            return []
        case .start:
            // Restarted meanwhile (its definition changed): try the new one at once.
            return spawn()
        case .fail, nil:
            break
        }
        return failed("could not start: \(reason)", now: now)
    }

    /// Its socket accepts connections and, if configured, its health check passed.
    public mutating func ready(now: Int64) -> [Action] {
        guard case .starting(let pid, let since, _) = state else { return [] }
        state = .running(pid: pid, since: since)
        return [.markReady]
    }

    /// The child exited (`waitpid` reaped it).
    public mutating func exited(_ status: ExitStatus, now: Int64) -> [Action] {
        lastExit = status
        switch state {
        case .starting, .running:
            guard policy.restart == .always || (policy.restart == .onFailure && status.isFailure) else {
                state = .exited
                return [.markDown, .report("exited (\(status)); restart policy \(policy.restart.rawValue): not restarted")]
            }
            return failed("exited (\(status))", now: now)
        case .stopping(_, _, .stay):
            state = .stopped
            return []
        case .stopping(_, _, .start):
            return spawn()
        case .stopping(_, _, .fail):
            return failed("not ready within \(policy.readyTimeoutMillis) ms, stopped (\(status))", now: now)
        default:
            return []
        }
    }

    /// A deadline may have fallen due.
    public mutating func wake(now: Int64) -> [Action] {
        switch state {
        case .backoff(let until) where now >= until:
            return spawn()
        case .backoff(let until):
            return [.wake(at: until)]
        case .starting(_, _, let readyBy) where now >= readyBy:
            // Not ready in time: stopped, and its exit then counts as a failure.
            var actions = stopChild(then: .fail, now: now) ?? []
            actions.insert(.report("not ready within \(policy.readyTimeoutMillis) ms: stopping it"), at: min(1, actions.count))
            return actions
        case .starting(_, _, let readyBy):
            return [.wake(at: readyBy)]
        case .stopping(let pid, let killAt, _) where now >= killAt:
            return [.report("still running \(policy.stopTimeoutMillis) ms after the stop signal: killing it"), .kill(pid: pid)]
        case .stopping(_, let killAt, _):
            return [.wake(at: killAt)]
        default:
            return []
        }
    }

    /// Stops the process for good (loom shuts down, or a reload removed it).
    public mutating func stop(now: Int64) -> [Action] {
        if let actions = stopChild(then: .stay, now: now) { return actions }
        switch state {
        case .starting, .running, .stopping:
            return []
        case .idle, .backoff, .exited, .crashLoop:
            state = .stopped
            return []
        case .spawning:
            state = .spawning(stopThen: .stay)
            return []
        case .stopped:
            return []
        }
    }

    /// Loom is shutting down: no more starts or restarts, from now on. A child that is
    /// there keeps running until `stop`; one that exits meanwhile stays down.
    public mutating func retire(now: Int64) -> [Action] {
        retired = true
        switch state {
        case .idle, .backoff:
            state = .stopped
        case .spawning(.start):
            state = .spawning(stopThen: nil)
        case .stopping(let pid, let killAt, .start), .stopping(let pid, let killAt, .fail):
            state = .stopping(pid: pid, killAt: killAt, then: .stay)
        default:
            break
        }
        return []
    }

    /// Restarts the process now, gracefully, forgetting earlier failures (a person asked, or
    /// its definition changed: then `policy` is the new one, which applies from the next
    /// spawn on; the child there now is stopped within its own stop timeout). One that never
    /// started (`idle`) has nothing to restart: it keeps waiting for its `start`.
    public mutating func restart(now: Int64, policy newPolicy: Policy? = nil) -> [Action] {
        guard !retired else { return [] }
        if let newPolicy { nextPolicy = newPolicy }
        recentRestarts = []
        if let actions = stopChild(then: .start, now: now) { return actions }
        switch state {
        case .idle, .starting, .running, .stopping:
            return []
        case .backoff, .exited, .crashLoop, .stopped:
            return spawn()
        case .spawning:
            // Already being spawned, perhaps from the old definition: stopped once it is
            // there, and spawned again.
            state = .spawning(stopThen: .start)
            return []
        }
    }

    /// When there is a child (starting, running or already stopping): stops it, its exit
    /// then leading to `then`. Nil when there is none.
    private mutating func stopChild(then: AfterStop, now: Int64) -> [Action]? {
        switch state {
        case .starting(let pid, _, _), .running(let pid, _):
            let killAt = now + policy.stopTimeoutMillis
            state = .stopping(pid: pid, killAt: killAt, then: then)
            return [.markDown, .signalStop(pid: pid), .wake(at: killAt)]
        case .stopping(let pid, let killAt, _):
            state = .stopping(pid: pid, killAt: killAt, then: then)
            return []
        default:
            return nil
        }
    }

    /// A new child, from the newest definition.
    private mutating func spawn() -> [Action] {
        if let nextPolicy { policy = nextPolicy }
        nextPolicy = nil
        state = .spawning(stopThen: nil)
        return [.spawn]
    }

    // MARK: - Failures

    /// The child failed (`what` says how): restart after the backoff, or give up.
    private mutating func failed(_ what: String, now: Int64) -> [Action] {
        guard !retired else {
            state = .stopped
            return [.markDown, .report("\(what); loom is stopping: not restarted")]
        }
        recentRestarts.removeAll { now - $0 >= policy.crashLoopWindowMillis }
        guard recentRestarts.count < policy.crashLoopRestarts else {
            state = .crashLoop
            return [
                .markDown,
                .report("\(what); \(recentRestarts.count) restarts within \(policy.crashLoopWindowMillis) ms: crash loop, not restarting"),
            ]
        }
        recentRestarts.append(now)
        restarts += 1
        let delay = backoff(attempt: recentRestarts.count)
        state = .backoff(until: now + delay)
        return [.markDown, .report("\(what); restarting in \(delay) ms"), .wake(at: now + delay)]
    }

    /// `initial × 2^(attempt-1)`, at most `maximum`.
    private func backoff(attempt: Int) -> Int64 {
        var delay = policy.backoffInitialMillis
        for _ in 1..<max(attempt, 1) {
            guard delay < policy.backoffMaximumMillis else { break }
            delay *= 2
        }
        return min(delay, policy.backoffMaximumMillis)
    }
}

extension SupervisedProcess.State {
    /// The state's name in the admin API, `loom ctl processes` and metrics.
    public var name: String {
        switch self {
        case .idle: "waiting"
        case .spawning: "spawning"
        case .starting: "starting"
        case .running: "running"
        case .backoff: "backoff"
        case .stopping: "stopping"
        case .stopped: "stopped"
        case .exited: "exited"
        case .crashLoop: "crash-loop"
        }
    }
}
