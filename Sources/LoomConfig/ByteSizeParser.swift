import Foundation

/// Sizes in bytes: integers, or strings such as `"512"`, `"16KB"`, `"16MB"`, `"1GB"`.
///
/// `K`/`KB`/`KiB`, `M`/`MB`/`MiB` and `G`/`GB`/`GiB` are all 1024-based (what people mean
/// for buffer limits), case-insensitive, with an optional space and optional `B`.
/// Negative, fractional and overflowing values are rejected.
enum ByteSizeParser {
    static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { ("0"..."9").contains($0) }
        guard !digits.isEmpty, let number = Int(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        guard let multiplier = multipliers[unit] else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    private static let multipliers: [String: Int] = [
        "": 1, "b": 1,
        "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
        "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
        "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    ]
}
