import LoomConfig

/// Where a match's parameters and unmatched rest lie in the request path, as byte offsets.
///
/// Offsets rather than strings so that a lookup allocates nothing; callers turn them into
/// substrings of the same path when they need the values (`value(at:in:)`, `rest(in:)`).
/// Parameter `i` belongs to the route's `PathPattern.parameterNames[i]`.
public struct PathCaptures: Sendable, Equatable {
    /// (start, end) of parameter i at 2i and 2i+1; `PathPattern.maxParameters` pairs.
    /// Not a `SIMD16`: its 64-byte alignment passed to every class holding captures (the
    /// exchange), and such an object is allocated by `posix_memalign`, which bypasses
    /// malloc's per-thread cache.
    private var bounds = InlineArray<16, Int32>(repeating: 0)
    /// Number of parameters captured.
    public private(set) var count = 0
    /// Byte offset of what follows the matched segments: the `/` that starts the rest of a
    /// prefix match, or the path's length when nothing follows.
    public internal(set) var restStart = 0

    public init() {}

    mutating func push(start: Int, end: Int) {
        precondition(count < PathPattern.maxParameters, "patterns are validated to at most maxParameters parameters")
        bounds[2 &* count] = Int32(truncatingIfNeeded: start)
        bounds[2 &* count &+ 1] = Int32(truncatingIfNeeded: end)
        count &+= 1
    }

    /// Drops the parameters pushed after the first `count`.
    mutating func truncate(to count: Int) {
        self.count = count
    }

    /// The byte range of parameter `index` in the path.
    public func range(at index: Int) -> Range<Int> {
        precondition(index >= 0 && index < count)
        return Int(bounds[2 * index])..<Int(bounds[2 * index + 1])
    }

    /// The value of parameter `index` in `path` (the path that was matched).
    public func value(at index: Int, in path: String) -> Substring {
        Self.slice(path, range(at: index))
    }

    /// The rest of `path` after the matched segments: `/x/y` for `/api/*` on `/api/x/y`,
    /// empty when the match consumed the whole path.
    public func rest(in path: String) -> Substring {
        Self.slice(path, restStart..<path.utf8.count)
    }

    public static func == (lhs: PathCaptures, rhs: PathCaptures) -> Bool {
        guard lhs.count == rhs.count, lhs.restStart == rhs.restStart else { return false }
        return (0..<lhs.count).allSatisfy { lhs.range(at: $0) == rhs.range(at: $0) }
    }

    private static func slice(_ path: String, _ range: Range<Int>) -> Substring {
        let utf8 = path.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
        let end = utf8.index(start, offsetBy: range.count)
        return path[start..<end]
    }
}
