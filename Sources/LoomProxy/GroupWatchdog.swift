#if canImport(Glibc)
import Glibc
#endif
import Subprocess
import Synchronization
import SystemPackage

/// Kills a supervised child's process group if loom dies, even by SIGKILL: what the child
/// forked (a Puma master's workers) does not inherit its parent-death signal, and once loom
/// is gone nobody else would signal the group.
///
/// A small `sh`, in a process group of its own, blocks reading one end of a socket pair
/// whose other end only loom holds. The kernel closes loom's end when loom dies, however it
/// dies: the read meets the end of the file and the shell SIGKILLs the group. When the child
/// ends normally, `release` sends the shell a line instead, and it exits without a signal:
/// loom never signals the watchdog, nor a group id the kernel may have handed out again.
final class GroupWatchdog: Sendable {
    /// Loom's end: taken (written to, then closed) by `release`.
    private let loomEnd: Mutex<Int32?>

    /// Watches process group `group`; nil when the socket pair cannot be made (the child is
    /// then covered by its own parent-death signal only).
    init?(group: Int32) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { return nil }
        // Neither end leaks into other children: swift-subprocess closes every other
        // descriptor in what it spawns, and close-on-exec covers anything else.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        loomEnd = Mutex(ends[1])
        let script = #"trap "" HUP INT QUIT TERM; read _ || kill -KILL -"$1""#
        var options = PlatformOptions()
        options.processGroupID = 0
        Task {
            _ = try? await Subprocess.run(
                .path("/bin/sh"), arguments: ["-c", script, "loom-watchdog", "\(group)"], platformOptions: options,
                input: .fileDescriptor(FileDescriptor(rawValue: ends[0]), closeAfterSpawningProcess: true),
                output: .discarded, error: .discarded)
        }
    }

    deinit { release() }

    /// The child has ended and its group was swept: the watchdog exits without a signal.
    /// The line waits in the socket if the shell is not reading yet.
    func release() {
        guard let end = loomEnd.withLock({ end in
            defer { end = nil }
            return end
        }) else { return }
        // MSG_NOSIGNAL: a watchdog killed by someone else must not take loom with it (SIGPIPE).
        var newline = UInt8(ascii: "\n")
        _ = send(end, &newline, 1, Int32(MSG_NOSIGNAL))
        close(end)
    }
}
