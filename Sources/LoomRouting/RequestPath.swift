/// Checks on a request path before it is routed.
///
/// A path with dot segments (`/public/../admin`) would match one route here and be resolved
/// to another path by the backend, slipping past whatever the route it really reaches
/// requires. Browsers and HTTP libraries remove dot segments before sending (RFC 3986
/// §5.2.4), so Loom rejects paths that still contain them, in plain or percent-encoded form,
/// instead of guessing how the backend would read them.
public enum RequestPath {
    /// True when a segment of `path` (query excluded) is `.` or `..`, with any of the dots
    /// written as `%2e`/`%2E`.
    public static func hasDotSegment(_ path: String) -> Bool {
        var utf8 = path.utf8[...]
        while !utf8.isEmpty {
            // Skip the separator, then look at one segment.
            if utf8.first == UInt8(ascii: "/") { utf8 = utf8.dropFirst() }
            let end = utf8.firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            if isDotSegment(utf8[utf8.startIndex..<end]) { return true }
            utf8 = utf8[end...]
        }
        return false
    }

    private static func isDotSegment(_ segment: Substring.UTF8View.SubSequence) -> Bool {
        var dots = 0
        var index = segment.startIndex
        while index < segment.endIndex {
            let byte = segment[index]
            if byte == UInt8(ascii: ".") {
                index = segment.index(after: index)
            } else if byte == UInt8(ascii: "%"),
                segment.distance(from: index, to: segment.endIndex) >= 3,
                segment[segment.index(index, offsetBy: 1)] == UInt8(ascii: "2"),
                segment[segment.index(index, offsetBy: 2)] | 0x20 == UInt8(ascii: "e")
            {
                index = segment.index(index, offsetBy: 3)
            } else {
                return false
            }
            dots += 1
            if dots > 2 { return false }
        }
        return dots == 1 || dots == 2
    }
}
