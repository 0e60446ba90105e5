/// Decides when a watched file has changed and settled: the watcher polls the file's
/// signature (`FileSignature`) and reloads only once a new signature has been seen on two
/// polls in a row, so a file written in several steps (an editor's save, `cp` of a large
/// file) is read once, whole. A pure value: the watcher feeds it what each poll saw.
struct FileChangeDebouncer {
    /// What the last reload (or the start) read.
    private var settled: FileSignature?
    /// A different signature seen on the last poll, waiting for a second look (itself nil
    /// when what was seen is a missing file).
    private var pending: FileSignature??

    init(current: FileSignature?) {
        settled = current
    }

    /// Whether to reload now, given this poll's signature (nil: the file is missing, as it
    /// is for a moment while some tools replace it).
    mutating func observe(_ signature: FileSignature?) -> Bool {
        if signature == settled {
            pending = nil
            return false
        }
        if let seen = pending, seen == signature {
            settled = signature
            pending = nil
            return true
        }
        pending = .some(signature)
        return false
    }
}

/// What `stat` says of a file: a change of any of these is a change of the file. Following
/// symbolic links, so a Kubernetes ConfigMap's swapped `..data` link counts.
public struct FileSignature: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var modifiedNanoseconds: Int64
}
