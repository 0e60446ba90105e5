import Foundation

/// Go-style duration strings: `"500ms"`, `"30s"`, `"1m30s"`, `"2h"`, `"1.5s"`, `"0"`.
///
/// Units are `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`; every number needs a unit except a
/// bare `0`. Negative values and anything beyond ~31 years are rejected: no timeout here
/// means "less than nothing" or "forever" (use 0 or omit the key for "no limit").
public enum DurationParser {
    /// The longest duration accepted, in nanoseconds (about 31.7 years).
    static let maxNanoseconds = 1e18

    static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" { return .zero }
        var scalars = Substring(trimmed).unicodeScalars[...]
        guard !scalars.isEmpty else { return nil }
        var total = 0.0
        while !scalars.isEmpty {
            var number = ""
            while let c = scalars.first, ("0"..."9").contains(c) || c == "." {
                number.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            var unit = ""
            while let c = scalars.first, !("0"..."9").contains(c), c != "." {
                unit.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            guard let value = Double(number), value.isFinite, let scale = unitNanoseconds[unit] else { return nil }
            total += value * scale
        }
        guard total <= maxNanoseconds else { return nil }
        return .nanoseconds(Int64(total.rounded()))
    }

    private static let unitNanoseconds: [String: Double] = [
        "ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9,
    ]

    /// Renders a duration the way users write them, for messages and docs ("1m30s", "500ms").
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds == 0 && attoseconds == 0 { return "0s" }
        if attoseconds != 0 && seconds < 1 { return "\(attoseconds / 1_000_000_000_000_000)ms" }
        var text = ""
        var rest = seconds
        if rest >= 3600 { text += "\(rest / 3600)h"; rest %= 3600 }
        if rest >= 60 { text += "\(rest / 60)m"; rest %= 60 }
        if rest > 0 || text.isEmpty { text += "\(rest)s" }
        return text
    }
}

extension Duration {
    /// Whole milliseconds, rounded down (the resilience state machines count in them).
    public var inMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
