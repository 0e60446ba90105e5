#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import LoomConfig
import LoomRouting
import NIOCore

/// The files loom serves itself: a `static` route's, and those an upstream names with
/// `X-Sendfile` or `X-Accel-Redirect`. Finds the file (never outside its directory), opens
/// it, and answers per `FileResponseRules`; the body leaves as a `FileRegion` (sendfile, no
/// copy through user space) with Content-Length framing.
///
/// Confinement: request paths are percent-decoded one segment at a time, and a segment that
/// decodes to `.`, `..`, or anything with `/` or NUL is refused; the file's real path
/// (symbolic links resolved) must then lie inside the directory's real path. Only regular
/// files are served, and they are opened non-blocking and checked after opening, so a FIFO
/// swapped in cannot stall an event loop.
enum FileServer {
    /// A file to send: its open handle and the bytes of it.
    struct Body {
        let handle: NIOFileHandle
        let range: ClosedRange<Int>
    }

    /// What loom answers.
    struct Answer {
        var status: Int
        var headers: [HeaderPair]
        /// Nil: no file bytes (HEAD, 304, 412, 416, errors).
        var body: Body?
        /// The body's length as the head declares it (a HEAD answer's, what GET would send);
        /// nil for 304, which has none.
        var contentLength: Int?
    }

    enum Lookup: Equatable {
        case file(path: String)
        /// A directory asked for without its trailing `/`: redirect there.
        case directory
        case notFound
        case forbidden
    }

    /// The file `path` (a normalized request path, percent-encoded) names under `root`, with
    /// `index` files for a directory path ending in `/`.
    static func lookup(_ path: Substring, root: String, index: [String]) -> Lookup {
        guard let segments = decodedSegments(path) else { return .notFound }
        let candidate = ([root] + segments).joined(separator: "/")
        guard let real = realPath(candidate) else { return .notFound }
        guard contains(root, real) else { return .forbidden }
        switch kind(real) {
        case .regular:
            return path.hasSuffix("/") ? .notFound : .file(path: real)
        case .directory:
            guard path.hasSuffix("/") else { return .directory }
            for name in index {
                if let file = realPath(real + "/" + name), contains(root, file), kind(file) == .regular { return .file(path: file) }
            }
            return .forbidden
        case .other:
            return .notFound
        }
    }

    /// The file an upstream's `X-Sendfile` (an absolute path) or `X-Accel-Redirect` (a URI
    /// under a mapped prefix) names, confined to the configured directories.
    static func lookup(sendfile: String?, accelRedirect: String?, settings: XSendfileSettings) -> Lookup {
        if let sendfile {
            guard sendfile.hasPrefix("/"), !sendfile.contains("\0"),
                !sendfile.split(separator: "/").contains(where: { $0 == "." || $0 == ".." })
            else { return .forbidden }
            guard let real = realPath(sendfile) else { return .notFound }
            guard settings.roots.contains(where: { contains($0, real) }) else { return .forbidden }
            return kind(real) == .regular ? .file(path: real) : .notFound
        }
        guard let uri = accelRedirect.map({ $0.split(separator: "?", maxSplits: 1).first.map(String.init) ?? $0 }),
            let mapping = settings.accelMappings.first(where: { uri.hasPrefix($0.prefix) })
        else { return .forbidden }
        return lookup(Substring(uri.dropFirst(mapping.prefix.count - 1)), root: mapping.directory, index: [])
    }

    /// Opens `path` and answers `method` with these request fields. Nil when the file cannot
    /// be opened as a regular file inside `directories` any more (it went away, changed into
    /// something else, or a link was swapped in after `lookup` checked the path: what was
    /// opened is checked again, by its descriptor).
    static func answer(_ path: String, within directories: [String], method: String, field: (String) -> String?) -> Answer? {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, isInside(descriptor, directories) else {
            close(descriptor)
            return nil
        }
        let size = Int(info.st_size)
        let modified = Int(info.st_mtim.tv_sec)
        var headers = [
            HeaderPair(name: "Content-Type", value: FileResponseRules.mediaType(of: path)),
            HeaderPair(name: "Last-Modified", value: HTTPDate.format(epochSeconds: modified)),
            HeaderPair(name: "ETag", value: FileResponseRules.entityTag(size: size, modified: modified)),
            HeaderPair(name: "Accept-Ranges", value: "bytes"),
        ]
        let plan = FileResponseRules.plan(method: method, size: size, modified: modified, field: field)
        var answer: Answer
        switch plan {
        case .full:
            answer = Answer(status: 200, headers: headers, body: size > 0 ? Body(handle: handle(descriptor), range: 0...(size - 1)) : nil, contentLength: size)
        case .partial(let range):
            headers.append(HeaderPair(name: "Content-Range", value: "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"))
            answer = Answer(status: 206, headers: headers, body: Body(handle: handle(descriptor), range: range), contentLength: range.count)
        case .notModified:
            answer = Answer(status: 304, headers: headers.filter { $0.name != "Content-Type" && $0.name != "Accept-Ranges" }, body: nil, contentLength: nil)
        case .preconditionFailed:
            answer = Answer(status: 412, headers: [], body: nil, contentLength: 0)
        case .rangeNotSatisfiable:
            answer = Answer(status: 416, headers: [HeaderPair(name: "Content-Range", value: "bytes */\(size)")], body: nil, contentLength: 0)
        }
        if answer.body == nil { close(descriptor) }
        if method == "HEAD", let body = answer.body {
            // The head says what GET would send; no bytes follow.
            try? body.handle.close()
            answer.body = nil
        }
        return answer
    }

    /// Whether the open file `descriptor` lies in one of `directories` (Linux: by the path the
    /// kernel gives for it; elsewhere the lookup's check stands).
    private static func isInside(_ descriptor: CInt, _ directories: [String]) -> Bool {
        #if os(Linux)
        guard let opened = realPath("/proc/self/fd/\(descriptor)") else { return false }
        return directories.contains { contains($0, opened) }
        #else
        return true
        #endif
    }

    private static func handle(_ descriptor: CInt) -> NIOFileHandle {
        NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
    }

    /// The segments of a request path, percent-decoded; nil when one decodes to `.`, `..`, or
    /// holds `/` or NUL (an encoded traversal), or is not UTF-8.
    static func decodedSegments(_ path: Substring) -> [String]? {
        var segments: [String] = []
        for segment in path.split(separator: "/") {
            guard let text = String(validating: QueryString.percentDecoded(segment), as: UTF8.self), text != ".", text != "..", !text.contains("/"), !text.contains("\0") else {
                return nil
            }
            segments.append(text)
        }
        return segments
    }

    /// Whether `path` (a real path) is `directory` or inside it.
    private static func contains(_ directory: String, _ path: String) -> Bool {
        guard let root = realPath(directory) else { return false }
        return path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private enum Kind { case regular, directory, other }

    private static func kind(_ path: String) -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .other }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        default: return .other
        }
    }
}
