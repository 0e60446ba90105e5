import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// Kills a supervised child's process group if loom dies, even by SIGKILL: what the child
/// forked (a Puma master's workers) does not inherit its parent-death signal, and once loom
/// is gone nobody else would signal the group.
///
/// A small `sh` in a process group of its own blocks reading a pipe whose only writer is
/// loom. The kernel closes that end when loom dies, however it dies; the read then returns
/// and the shell SIGKILLs the group. When the child ends normally, `release` kills the
/// watchdog instead, so it never signals a group id the kernel may have handed out again.
final class GroupWatchdog: Sendable {
    private enum State {
        case starting
        case running(pid: Int32)
        case released
    }

    private let state = Mutex(State.starting)

    /// Watches process group `group`; nil when the pipe cannot be made (the child is then
    /// covered by its own parent-death signal only).
    init?(group: Int32) {
        // Loom's end is never written, and closed only once the watchdog is gone (else it
        // would read the end of the file and kill the group). Neither end leaks into other
        // children: swift-subprocess closes every other descriptor in the children it spawns.
        guard let (readEnd, writeEnd) = try? FileDescriptor.pipe() else { return nil }
        for end in [readEnd, writeEnd] { _ = fcntl(end.rawValue, F_SETFD, FD_CLOEXEC) }
        let script = #"trap "" HUP INT QUIT TERM; read _; kill -KILL -"$1""#
        var options = PlatformOptions()
        options.processGroupID = 0
        Task { [self] in
            _ = try? await Subprocess.run(
                .path("/bin/sh"), arguments: ["-c", script, "loom-watchdog", "\(group)"], platformOptions: options,
                input: .fileDescriptor(readEnd, closeAfterSpawningProcess: true), output: .discarded, error: .discarded
            ) { execution in
                let pid = execution.processIdentifier.value
                let released = self.state.withLock { state -> Bool in
                    guard case .starting = state else { return true }
                    state = .running(pid: pid)
                    return false
                }
                // Released before it even ran: not needed any more.
                if released { _ = kill(pid, SIGKILL) }
            }
            try? writeEnd.close()
        }
    }

    /// The child has ended and its group was swept: the watchdog goes, without a signal.
    func release() {
        let previous = state.withLock { state -> State in
            defer { state = .released }
            return state
        }
        // Not reaped until swift-subprocess sees it end, so the pid is still the watchdog's.
        if case .running(let pid) = previous { _ = kill(pid, SIGKILL) }
    }
}
