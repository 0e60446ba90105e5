#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Watches the configuration file by polling its `stat` signature (which sees in-place
/// writes, renames over it and swapped symbolic links alike, where inotify needs a
/// different watch for each) and calls `onChange` once a change has settled
/// (`FileChangeDebouncer`). `onChange` runs to its end before the next poll.
public final class ConfigFileWatcher: Sendable {
    private let task: Task<Void, Never>

    public init(path: String, interval: Duration, onChange: @escaping @Sendable () async -> Void) {
        task = Task {
            var debouncer = FileChangeDebouncer(current: Self.signature(of: path))
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                if debouncer.observe(Self.signature(of: path)) { await onChange() }
            }
        }
    }

    public func stop() {
        task.cancel()
    }

    static func signature(of path: String) -> FileSignature? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileSignature(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec), modifiedNanoseconds: Int64(info.st_mtim.tv_nsec))
    }
}
