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
        var utf8 = Array(path.utf8)
        if utf8.contains(UInt8(ascii: "%")) || containsDoubleSlash(utf8) {
            utf8 = decodeUnreserved(utf8)
            utf8 = mergeSlashes(utf8)
            if hasDotSegment(utf8) { return nil }
            return String(decoding: utf8, as: UTF8.self)
        }
        return hasDotSegment(utf8) ? nil : path
    }

    /// True when a segment is `.` or `..` (after unreserved escapes were decoded).
    static func hasDotSegment(_ path: [UInt8]) -> Bool {
        var segmentStart = 0
        for index in 0...path.count {
            guard index == path.count || path[index] == UInt8(ascii: "/") else { continue }
            let length = index - segmentStart
            if length == 1 || length == 2, path[segmentStart..<index].allSatisfy({ $0 == UInt8(ascii: ".") }) {
                return true
            }
            segmentStart = index + 1
        }
        return false
    }

    private static func containsDoubleSlash(_ path: [UInt8]) -> Bool {
        zip(path, path.dropFirst()).contains { $0 == UInt8(ascii: "/") && $1 == UInt8(ascii: "/") }
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
