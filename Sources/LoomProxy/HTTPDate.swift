#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `Date` header value for responses Loom produces itself (RFC 9110 §6.6.1 requires
/// it from an origin server with a clock), formatted at most once per second.
///
/// One per event loop (`LoopContext`), so the cache needs no lock.
struct HTTPDate {
    private var cachedSecond: Int = -1
    private var cachedValue = ""

    /// IMF-fixdate for the current second, e.g. `Sat, 28 Nov 2026 04:22:18 GMT`.
    mutating func current() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = Int(now.tv_sec)
        if second != cachedSecond {
            cachedSecond = second
            cachedValue = Self.format(epochSeconds: second)
        }
        return cachedValue
    }

    static func format(epochSeconds: Int) -> String {
        var seconds = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
