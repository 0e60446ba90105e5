/// The request path as Loom routes it and forwards it.
///
/// A backend reads `/public/../admin`, `//admin` and `/%61dmin` all as `/admin`. If Loom routed
/// the raw bytes, each would slip past a rule on `/admin` and reach a catch-all route whose
/// upstream then serves `/admin` anyway. So, like nginx, Loom normalizes before routing and
/// forwards the normalized path, so router and backend see the same thing:
/// - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded
///   (RFC 3986 §6.2.2.2); every other escape, `%2F` included, is kept as sent;
/// - runs of `/` are merged into one (nginx `merge_slashes`);
/// - a path that still has `.` or `..` segments is refused: browsers and HTTP libraries
///   remove them before sending (RFC 3986 §5.2.4), so only probing clients send them.
public enum RequestPath {
    /// The normalized path, or nil when it has dot segments (the request gets 400).
    /// `path` excludes the query; the common case (nothing to change) returns it as is.
    public static func normalized(_ path: String) -> String? {
        // The common case, nothing to change, is checked in place on the UTF-8 view: no copy.
        let utf8 = path.utf8
        guard utf8.contains(UInt8(ascii: "%")) || containsDoubleSlash(utf8) else {
            return hasDotSegment(utf8) ? nil : path
        }
        let bytes = mergeSlashes(decodeUnreserved(Array(utf8)))
        return hasDotSegment(bytes) ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// What a dot-segment path resolves to (RFC 3986 §5.2.4) after the other normalization
    /// steps: `/public/../admin` → `/admin`, `/a/.` → `/a/`. Only for suggesting what to write
    /// instead of a route path that `normalized` refuses; requests with dot segments are refused.
    static func removingDotSegments(_ path: String) -> String {
        let merged = String(decoding: mergeSlashes(decodeUnreserved(Array(path.utf8))), as: UTF8.self)
        var output: [Substring] = []
        var trailingSlash = false
        for segment in merged.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            switch segment {
            case ".":
                trailingSlash = true
            case "..":
                if !output.isEmpty { output.removeLast() }
                trailingSlash = true
            default:
                output.append(segment)
                trailingSlash = false
            }
        }
        let joined = "/" + output.joined(separator: "/")
        return trailingSlash && !output.isEmpty ? joined + "/" : joined
    }

    /// True when a segment is `.` or `..` (after unreserved escapes were decoded).
    static func hasDotSegment<Bytes: Collection<UInt8>>(_ path: Bytes) -> Bool {
        // Dots in the current segment, or -1 once it holds anything else.
        var dots = 0
        for byte in path {
            switch byte {
            case UInt8(ascii: "/"):
                if dots == 1 || dots == 2 { return true }
                dots = 0
            case UInt8(ascii: ".") where dots >= 0:
                dots += 1
            default:
                dots = -1
            }
        }
        return dots == 1 || dots == 2
    }

    private static func containsDoubleSlash<Bytes: Collection<UInt8>>(_ path: Bytes) -> Bool {
        var previousWasSlash = false
        for byte in path {
            let slash = byte == UInt8(ascii: "/")
            if slash && previousWasSlash { return true }
            previousWasSlash = slash
        }
        return false
    }

    private static func mergeSlashes(_ path: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(path.count)
        for byte in path where !(byte == UInt8(ascii: "/") && result.last == UInt8(ascii: "/")) {
            result.append(byte)
        }
        return result
    }

    private static func decodeUnreserved(_ path: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(path.count)
        var index = 0
        while index < path.count {
            if path[index] == UInt8(ascii: "%"), index + 2 < path.count,
                let high = hexValue(path[index + 1]), let low = hexValue(path[index + 2])
            {
                let decoded = high << 4 | low
                if isUnreserved(decoded) {
                    result.append(decoded)
                    index += 3
                    continue
                }
            }
            result.append(path[index])
            index += 1
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }
}
