import LoomHTTP

/// How loom answers a request for a file it serves (a `static` route, an X-Sendfile
/// response), decided from the request's fields and the file's size and modification time
/// alone: conditional requests (RFC 9110 §13) and byte ranges (RFC 9110 §14). Pure.
enum FileResponseRules {
    enum Plan: Equatable {
        /// 200 with the whole file.
        case full
        /// 206 with these bytes (inclusive offsets).
        case partial(ClosedRange<Int>)
        /// 304: the client's copy is current.
        case notModified
        /// 412: a precondition of the client's failed.
        case preconditionFailed
        /// 416, with `Content-Range: bytes */size`.
        case rangeNotSatisfiable
    }

    /// The strong validator loom gives a file, as nginx does: modification time and size in
    /// hex (`"5f3a1c2e-1a2b"`).
    static func entityTag(size: Int, modified: Int) -> String {
        "\"" + String(modified, radix: 16) + "-" + String(size, radix: 16) + "\""
    }

    /// The answer to `method` with these request fields (`field` reads one, lower-cased name)
    /// for a file of `size` bytes modified at `modified` (seconds since 1970), in RFC 9110
    /// §13.2.2's order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since,
    /// then Range (with If-Range).
    static func plan(method: String, size: Int, modified: Int, field: (String) -> String?) -> Plan {
        let tag = entityTag(size: size, modified: modified)
        let readOnly = method == "GET" || method == "HEAD"
        if let ifMatch = field("if-match") {
            if !matches(ifMatch, tag, weak: false) { return .preconditionFailed }
        } else if let since = field("if-unmodified-since").flatMap(HTTPDate.parse), modified > since {
            return .preconditionFailed
        }
        if let ifNoneMatch = field("if-none-match") {
            if matches(ifNoneMatch, tag, weak: true) { return readOnly ? .notModified : .preconditionFailed }
        } else if readOnly, let since = field("if-modified-since").flatMap(HTTPDate.parse), modified <= since {
            return .notModified
        }
        guard method == "GET", let range = field("range") else { return .full }
        if let ifRange = field("if-range") {
            // An entity tag must match strongly; a date, exactly (RFC 9110 §13.1.5).
            let current = ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") ? ifRange == tag : HTTPDate.parse(ifRange) == modified
            if !current { return .full }
        }
        return byteRange(range, size: size)
    }

    /// One `bytes=` range against a file of `size`. A malformed field, another unit, or
    /// several ranges are ignored (the whole file: RFC 9110 §14.2 lets a server ignore Range).
    static func byteRange(_ field: String, size: Int) -> Plan {
        // The unit is case-insensitive (RFC 9110 §14.1).
        guard field.prefix(6).lowercased() == "bytes=" else { return .full }
        let spec = field.dropFirst(6).trimmingSpaces
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .full }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        func number(_ text: Substring) -> Int? {
            guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(text)
        }
        if first.isEmpty {
            // A suffix: the last N bytes.
            guard let count = number(last) else { return .full }
            guard count > 0, size > 0 else { return .rangeNotSatisfiable }
            return .partial(max(0, size - count)...(size - 1))
        }
        guard let start = number(first) else { return .full }
        let end: Int
        if last.isEmpty {
            end = size - 1
        } else {
            guard let given = number(last), given >= start else { return .full }
            end = min(given, size - 1)
        }
        guard start < size else { return .rangeNotSatisfiable }
        return .partial(start...end)
    }

    /// Whether an `If-Match` / `If-None-Match` list names `tag` (or is `*`); `weak` compares
    /// without the `W/` prefixes (RFC 9110 §8.8.3.2).
    static func matches(_ list: String, _ tag: String, weak: Bool) -> Bool {
        if list.trimmingSpaces == "*" { return true }
        for candidate in list.split(separator: ",").map({ $0.trimmingSpaces }) {
            if weak {
                if candidate.droppingWeakPrefix == Substring(tag).droppingWeakPrefix { return true }
            } else if candidate == tag {
                return true
            }
        }
        return false
    }

    /// The media type for a file name, by extension; `application/octet-stream` otherwise.
    static func mediaType(of name: String) -> String {
        guard let dot = name.lastIndex(of: "."), !name[dot...].contains("/") else { return "application/octet-stream" }
        return mediaTypes[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    static let mediaTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "map": "application/json", "txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8",
        "xml": "application/xml", "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif", "webp": "image/webp", "avif": "image/avif", "ico": "image/x-icon", "woff": "font/woff", "woff2": "font/woff2",
        "ttf": "font/ttf", "otf": "font/otf", "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip",
        "tar": "application/x-tar", "wasm": "application/wasm", "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg",
        "ogg": "audio/ogg", "wav": "audio/wav", "webmanifest": "application/manifest+json",
    ]
}

extension Substring {
    fileprivate var droppingWeakPrefix: Substring { hasPrefix("W/") ? dropFirst(2) : self }
}
