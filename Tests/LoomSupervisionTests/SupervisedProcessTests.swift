import Testing

@testable import LoomSupervision

/// The supervision state machine driven by hand with a fake clock (milliseconds): every
/// transition, restart policy, the backoff sequence, crash-loop detection and its window,
/// readiness timeouts and graceful stops, without a process or a sleep.
@Suite struct SupervisedProcessTests {
    typealias P = SupervisedProcess

    static let policy = P.Policy(
        restart: .always, backoffInitialMillis: 100, backoffMaximumMillis: 1_000, crashLoopRestarts: 3,
        crashLoopWindowMillis: 10_000, readyTimeoutMillis: 500, stopTimeoutMillis: 200)

    /// A process started and made ready at `now`.
    static func running(_ policy: P.Policy = policy, pid: Int32 = 10, now: Int64 = 0) -> P {
        var process = P(policy: policy)
        _ = process.start(now: now)
        _ = process.spawned(pid: pid, now: now)
        _ = process.ready(now: now)
        return process
    }

    @Test func startSpawnReady() {
        var process = P(policy: Self.policy)
        #expect(process.start(now: 0) == [.spawn])
        #expect(process.start(now: 0) == [], "a second start while spawning does nothing")
        #expect(process.spawned(pid: 42, now: 5) == [.wake(at: 505)])
        #expect(process.state == .starting(pid: 42, since: 5, readyBy: 505))
        #expect(process.pid == 42)
        #expect(process.wake(now: 100) == [.wake(at: 505)], "an early wake-up asks again")
        #expect(process.ready(now: 120) == [.markReady])
        #expect(process.state == .running(pid: 42, since: 5))
        #expect(process.ready(now: 130) == [], "ready twice is nothing")
        #expect(process.restarts == 0)
    }

    @Test func crashRestartsAfterDoublingBackoff() {
        var process = Self.running()
        var now: Int64 = 1_000
        var delays: [Int64] = []
        for pid in Int32(11)...13 {
            let actions = process.exited(.exited(1), now: now)
            guard case .backoff(let until) = process.state else {
                Issue.record("expected backoff, got \(process.state)")
                return
            }
            #expect(actions.first == .markDown)
            #expect(actions.last == .wake(at: until))
            delays.append(until - now)
            #expect(process.wake(now: until - 1) == [.wake(at: until)])
            #expect(process.wake(now: until) == [.spawn])
            _ = process.spawned(pid: pid, now: until)
            _ = process.ready(now: until)
            now = until + 10
        }
        #expect(delays == [100, 200, 400])
        #expect(process.restarts == 3)
        #expect(process.lastExit == .exited(1))
    }

    @Test func backoffStopsGrowingAtTheMaximum() {
        let policy = P.Policy(backoffInitialMillis: 300, backoffMaximumMillis: 1_000, crashLoopRestarts: 10, crashLoopWindowMillis: 100_000)
        var process = Self.running(policy)
        var delays: [Int64] = []
        var now: Int64 = 0
        for _ in 0..<5 {
            _ = process.exited(.signaled(9), now: now)
            guard case .backoff(let until) = process.state else { return }
            delays.append(until - now)
            now = until
            _ = process.wake(now: now)
            _ = process.spawned(pid: 1, now: now)
        }
        #expect(delays == [300, 600, 1_000, 1_000, 1_000])
    }

    /// The fourth restart within the window is not made; a person's restart clears it.
    @Test func crashLoopGivesUpUntilRestarted() {
        var process = Self.running()
        var now: Int64 = 0
        for _ in 0..<3 {
            _ = process.exited(.exited(2), now: now)
            guard case .backoff(let until) = process.state else { return }
            now = until
            _ = process.wake(now: now)
            _ = process.spawned(pid: 7, now: now)
        }
        let actions = process.exited(.exited(2), now: now + 1)
        #expect(process.state == .crashLoop)
        #expect(actions.first == .markDown)
        #expect(actions.contains { if case .report(let text) = $0 { text.contains("crash loop") } else { false } })
        #expect(!actions.contains(.spawn) && !actions.contains { if case .wake = $0 { true } else { false } })
        #expect(process.wake(now: now + 100_000) == [], "nothing wakes a crash loop")
        #expect(process.restarts == 3)

        #expect(process.restart(now: now + 2) == [.spawn])
        _ = process.spawned(pid: 8, now: now + 2)
        _ = process.exited(.exited(2), now: now + 3)
        guard case .backoff(let until) = process.state else {
            Issue.record("restart must forget the earlier failures, got \(process.state)")
            return
        }
        #expect(until - (now + 3) == 100, "and start the backoff over")
    }

    /// Restarts older than the window are forgotten: a process that crashes now and then,
    /// with long runs between, never counts as a crash loop, and restarts quickly.
    @Test func failuresOutsideTheWindowAreForgotten() {
        var process = Self.running()
        var now: Int64 = 0
        for _ in 0..<10 {
            _ = process.exited(.exited(1), now: now)
            guard case .backoff(let until) = process.state else {
                Issue.record("expected backoff, got \(process.state)")
                return
            }
            #expect(until - now == 100)
            _ = process.wake(now: until)
            _ = process.spawned(pid: 3, now: until)
            _ = process.ready(now: until)
            now = until + 10_000
        }
        #expect(process.restarts == 10)
    }

    @Test(arguments: [
        (P.RestartPolicy.always, P.ExitStatus.exited(0), true),
        (.always, .exited(3), true),
        (.onFailure, .exited(0), false),
        (.onFailure, .exited(3), true),
        (.onFailure, .signaled(15), true),
        (.never, .exited(3), false),
        (.never, .signaled(9), false),
    ])
    func restartPolicies(policy restart: P.RestartPolicy, status: P.ExitStatus, restarts: Bool) {
        var policy = Self.policy
        policy.restart = restart
        var process = Self.running(policy)
        let actions = process.exited(status, now: 50)
        #expect(actions.first == .markDown)
        if restarts {
            #expect(process.state == .backoff(until: 150))
        } else {
            #expect(process.state == .exited)
            #expect(!actions.contains { if case .wake = $0 { true } else { false } })
            #expect(process.start(now: 60) == [.spawn], "an exited process can be started again")
        }
    }

    @Test func notReadyInTimeIsStoppedAndCountsAsAFailure() {
        var process = P(policy: Self.policy)
        _ = process.start(now: 0)
        _ = process.spawned(pid: 5, now: 0)
        let actions = process.wake(now: 500)
        #expect(actions.first == .markDown)
        #expect(actions.suffix(2) == [.signalStop(pid: 5), .wake(at: 700)])
        #expect(process.state == .stopping(pid: 5, killAt: 700, then: .fail))
        #expect(process.ready(now: 600) == [], "too late: it is being stopped")
        _ = process.exited(.signaled(15), now: 650)
        #expect(process.state == .backoff(until: 750))
        #expect(process.restarts == 1)
    }

    @Test func stopSignalsThenKillsAfterTheTimeout() {
        var process = Self.running(pid: 9)
        #expect(process.stop(now: 1_000) == [.markDown, .signalStop(pid: 9), .wake(at: 1_200)])
        #expect(process.wake(now: 1_100) == [.wake(at: 1_200)])
        let late = process.wake(now: 1_200)
        #expect(late.last == .kill(pid: 9))
        #expect(process.exited(.signaled(9), now: 1_210) == [])
        #expect(process.state == .stopped)
        #expect(process.wake(now: 5_000) == [])
        #expect(process.stop(now: 5_000) == [], "stopping twice is nothing")
    }

    @Test func stopWhileDownCancelsTheRestart() {
        var process = Self.running()
        _ = process.exited(.exited(1), now: 0)
        #expect(process.stop(now: 10) == [])
        #expect(process.state == .stopped)
        #expect(process.wake(now: 200) == [], "the backoff's wake-up finds it stopped")
    }

    /// `stop` while the spawn is under way: the child is stopped as soon as it is reported,
    /// and a failed spawn just leaves it stopped.
    @Test func stopDuringSpawn() {
        var process = P(policy: Self.policy)
        _ = process.start(now: 0)
        #expect(process.stop(now: 1) == [])
        #expect(process.spawned(pid: 4, now: 2) == [.signalStop(pid: 4), .wake(at: 202)])
        _ = process.exited(.signaled(15), now: 3)
        #expect(process.state == .stopped)

        var failing = P(policy: Self.policy)
        _ = failing.start(now: 0)
        _ = failing.stop(now: 1)
        #expect(failing.spawnFailed("no such file", now: 2) == [])
        #expect(failing.state == .stopped)
    }

    @Test func spawnFailureIsACrash() {
        var process = P(policy: Self.policy)
        _ = process.start(now: 0)
        let actions = process.spawnFailed("bundle: not found", now: 3)
        #expect(process.state == .backoff(until: 103))
        #expect(actions.contains { if case .report(let text) = $0 { text.contains("could not start: bundle: not found") } else { false } })
        #expect(process.lastExit == nil)
    }

    /// A graceful restart: the stop signal, then a new child once the old one exited, and
    /// no failure counted.
    @Test func restartStopsThenStartsWithoutCountingAFailure() {
        var process = Self.running(pid: 20)
        #expect(process.restart(now: 100) == [.markDown, .signalStop(pid: 20), .wake(at: 300)])
        #expect(process.exited(.exited(0), now: 150) == [.spawn])
        #expect(process.spawned(pid: 21, now: 151) == [.wake(at: 651)])
        #expect(process.restarts == 0)
        // A restart asked while a stop is under way turns it into a restart.
        _ = process.ready(now: 160)
        _ = process.stop(now: 200)
        #expect(process.restart(now: 210) == [])
        #expect(process.exited(.exited(0), now: 220) == [.spawn])
    }

    /// A reload's new definition: the child there now is stopped within its own stop timeout;
    /// the new policy applies to the next child.
    @Test func aRestartWithANewPolicyStopsTheOldChildByTheOldOne() {
        var process = Self.running(pid: 30)
        var next = Self.policy
        next.stopTimeoutMillis = 5_000
        next.readyTimeoutMillis = 9_000
        #expect(process.restart(now: 100, policy: next) == [.markDown, .signalStop(pid: 30), .wake(at: 300)])
        #expect(process.policy == Self.policy, "the old child's, until it is gone")
        #expect(process.exited(.exited(0), now: 150) == [.spawn])
        #expect(process.policy == next)
        #expect(process.spawned(pid: 31, now: 160) == [.wake(at: 9_160)])

        // The same when the reload comes while the old definition's child is being spawned.
        var spawning = P(policy: Self.policy)
        _ = spawning.start(now: 0)
        _ = spawning.restart(now: 1, policy: next)
        #expect(spawning.spawned(pid: 32, now: 2) == [.signalStop(pid: 32), .wake(at: 202)])
        #expect(spawning.exited(.signaled(15), now: 3) == [.spawn])
        #expect(spawning.policy == next)
    }

    /// A process that never started has nothing to restart: it waits for its `start`, which
    /// then follows the new policy.
    @Test func aRestartBeforeTheStartWaitsForIt() {
        var process = P(policy: Self.policy)
        var next = Self.policy
        next.readyTimeoutMillis = 9_000
        #expect(process.restart(now: 0, policy: next) == [])
        #expect(process.state == .idle)
        #expect(process.start(now: 1) == [.spawn])
        #expect(process.spawned(pid: 6, now: 2) == [.wake(at: 9_002)])
    }

    /// A restart while a spawn is under way (perhaps of the old definition): the child is
    /// stopped once it is there and spawned again; a failed spawn is tried again at once.
    @Test func aRestartDuringASpawnSpawnsAgain() {
        var process = P(policy: Self.policy)
        _ = process.start(now: 0)
        #expect(process.restart(now: 1) == [])
        #expect(process.state == .spawning(stopThen: .start))
        #expect(process.spawned(pid: 4, now: 2) == [.signalStop(pid: 4), .wake(at: 202)])
        #expect(process.exited(.signaled(15), now: 3) == [.spawn])
        #expect(process.restarts == 0, "not a failure")

        var failing = P(policy: Self.policy)
        _ = failing.start(now: 0)
        _ = failing.restart(now: 1)
        #expect(failing.spawnFailed("old command gone", now: 2) == [.spawn])
        #expect(failing.state == .spawning(stopThen: nil))
    }

    /// Shutting down: nothing starts again, whatever happens before each process's turn
    /// to stop comes.
    @Test func aRetiredProcessNeverStartsAgain() {
        var backingOff = Self.running()
        _ = backingOff.exited(.exited(1), now: 0)
        #expect(backingOff.retire(now: 10) == [])
        #expect(backingOff.state == .stopped)
        #expect(backingOff.wake(now: 1_000) == [], "its backoff's wake-up finds it stopped")

        var restarting = Self.running(pid: 8)
        _ = restarting.restart(now: 0)
        _ = restarting.retire(now: 10)
        #expect(restarting.exited(.exited(0), now: 20) == [], "the restart under way ends with the exit")
        #expect(restarting.state == .stopped)

        var running = Self.running(pid: 9)
        _ = running.retire(now: 0)
        #expect(running.state == .running(pid: 9, since: 0), "it runs until its stop")
        let crash = running.exited(.exited(1), now: 5)
        #expect(running.state == .stopped)
        #expect(crash.first == .markDown && !crash.contains { if case .wake = $0 { true } else { false } })
        #expect(running.start(now: 6) == [] && running.restart(now: 7) == [])

        var waiting = P(policy: Self.policy)
        _ = waiting.retire(now: 0)
        #expect(waiting.state == .stopped)
        #expect(waiting.start(now: 1) == [])

        var notReady = P(policy: Self.policy)
        _ = notReady.start(now: 0)
        _ = notReady.spawned(pid: 3, now: 0)
        _ = notReady.retire(now: 1)
        _ = notReady.wake(now: 500)
        #expect(notReady.state == .stopping(pid: 3, killAt: 700, then: .fail))
        _ = notReady.exited(.signaled(15), now: 510)
        #expect(notReady.state == .stopped, "not ready in time while retired: no backoff")
    }

    @Test func eventsThatDoNotFitTheStateAreIgnored() {
        var process = P(policy: Self.policy)
        #expect(process.spawned(pid: 1, now: 0) == [])
        #expect(process.ready(now: 0) == [])
        #expect(process.exited(.exited(0), now: 0) == [])
        #expect(process.spawnFailed("x", now: 0) == [])
        #expect(process.state == .idle)
        #expect(process.lastExit == .exited(0), "the status is still recorded")
    }
}
