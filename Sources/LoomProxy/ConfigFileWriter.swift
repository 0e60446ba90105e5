import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Replaces a configuration file in one step: the new text goes to a temporary file in the
/// same directory, is flushed to disk, and is renamed over the old one, so a reader (the file
/// watch, an editor, a crash) sees the old file or the new one, never half of one.
enum ConfigFileWriter {
    /// Writes `text` to `path` (keeping an existing file's permissions, 0600 for a new one: the
    /// configuration may hold tokens; a symbolic link is followed, so the file it points to is
    /// replaced and the link stays); with `backingUp`, the previous contents are first copied
    /// to `path.bak`, whose path is returned.
    static func write(_ text: String, to path: String, backingUp: Bool) throws(ConfigReloader.SaveError) -> String? {
        let fail = { (what: String) in ConfigReloader.SaveError(message: "cannot save to \(path): \(what)") }
        var existing = stat()
        let exists = stat(path, &existing) == 0
        var backup: String?
        let target = exists ? URL(fileURLWithPath: path).resolvingSymlinksInPath().path : path
        if backingUp && exists {
            // The contents, not a copy of a link that would then point at the new file.
            let copy = path + ".bak"
            guard let old = FileManager.default.contents(atPath: target) else { throw fail("cannot read it to back it up") }
            try writeReplacing(Array(old), to: copy, mode: existing.st_mode & 0o7777, fail)
            backup = copy
        }
        try writeReplacing(Array(text.utf8), to: target, mode: exists ? existing.st_mode & 0o7777 : 0o600, fail)
        return backup
    }

    /// Writes `bytes` to a temporary file next to `target`, flushes it and renames it over
    /// `target`.
    private static func writeReplacing(
        _ bytes: [UInt8], to target: String, mode: mode_t, _ fail: (String) -> ConfigReloader.SaveError
    ) throws(ConfigReloader.SaveError) {
        let directory = (target as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((target as NSString).lastPathComponent).\(getpid()).tmp"
        unlink(temporary)  // left by a loom that crashed while saving, with this pid
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw fail(String(cString: strerror(errno))) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            written += count
        }
        // The mode is set outright, not through the umask: an existing file keeps its own.
        let moded = fchmod(descriptor, mode) == 0
        let flushed = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, moded, flushed, rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw fail(reason)
        }
    }

    /// Whether two paths name the same file (however spelled, through links); a path that
    /// does not exist names no file yet.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat()
        var second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }
}
