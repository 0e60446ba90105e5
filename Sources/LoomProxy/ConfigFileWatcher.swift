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

    /// `since`: the file's signature when the running configuration was read (nil: now).
    public init(path: String, interval: Duration, since: FileSignature? = nil, onChange: @escaping @Sendable () async -> Void) {
        task = Task {
            var debouncer = FileChangeDebouncer(current: since ?? Self.signature(of: path))
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

    public static func signature(of path: String) -> FileSignature? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        return FileSignature(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(modified.tv_sec), modifiedNanoseconds: Int64(modified.tv_nsec))
    }
}
