import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Replaces a configuration file in one step: the new text goes to a temporary file in the
/// same directory, is flushed to disk, and is renamed over the old one, so a reader (the file
/// watch, an editor, a crash) sees the old file or the new one, never half of one.
enum ConfigFileWriter {
    /// Writes `text` to `path` (keeping an existing file's permissions; a symbolic link is
    /// followed, so the file it points to is replaced and the link stays); with `backingUp`,
    /// the previous file is first copied to `path.bak`, whose path is returned.
    static func write(_ text: String, to path: String, backingUp: Bool) throws(ConfigReloader.SaveError) -> String? {
        let fail = { (what: String) in ConfigReloader.SaveError(message: "cannot save to \(path): \(what)") }
        var existing = stat()
        let exists = stat(path, &existing) == 0
        var backup: String?
        if backingUp && exists {
            let copy = path + ".bak"
            do {
                if FileManager.default.fileExists(atPath: copy) { try FileManager.default.removeItem(atPath: copy) }
                try FileManager.default.copyItem(atPath: path, toPath: copy)
            } catch {
                throw fail("backing up the old file to \(copy) failed: \(error.localizedDescription)")
            }
            backup = copy
        }
        let target = exists ? URL(fileURLWithPath: path).resolvingSymlinksInPath().path : path
        let directory = (target as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((target as NSString).lastPathComponent).\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw fail(String(cString: strerror(errno))) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            written += count
        }
        // The mode is set outright, not through the umask: an existing file keeps its own.
        let moded = fchmod(descriptor, exists ? existing.st_mode & 0o7777 : 0o644) == 0
        let flushed = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, moded, flushed, rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw fail(reason)
        }
        return backup
    }
}
