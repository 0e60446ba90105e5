/// Query parameters as routing reads them: `a=1&b=&c` has `a` = `1`, `b` = empty and `c` =
/// empty; names and values are percent-decoded (`%20` → space; `+` stays `+`, since only
/// HTML forms give it the meaning of a space). Parameters are decoded into a small stack
/// buffer one at a time, so checking a condition allocates nothing.
public enum QueryString {
    /// The decoded value of the first parameter named `name`, if any.
    public static func firstValue(_ name: String, in query: Substring) -> String? {
        var found: String?
        _ = contains(query, named: name) { bytes in
            found = String(decoding: bytes, as: UTF8.self)
            return true
        }
        return found
    }

    /// `target` (`path?query`) without the parameters whose decoded name is one of `names`
    /// (and without the `?` when none is left); the other parameters as they were sent.
    public static func removing(_ names: [String], from target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let query = target[target.index(after: mark)...]
        let kept = query.split(separator: "&", omittingEmptySubsequences: false).filter { pair in
            let name = pair.prefix { $0 != "=" }
            return !names.contains { wanted in
                var encoded = Substring(name)
                var wanted = wanted
                return encoded.withUTF8 { bytes in wanted.withUTF8 { decodedEquals(bytes, $0) } }
            }
        }
        let path = target[..<mark]
        return kept.isEmpty ? String(path) : path + "?" + kept.joined(separator: "&")
    }

    /// Calls `body` with the decoded value of each parameter whose decoded name is `name`,
    /// until it returns true; returns whether it did.
    static func contains(_ query: Substring, named name: String, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var query = query
        return query.withUTF8 { bytes in
            var name = name
            return name.withUTF8 { wanted in
                var start = 0
                while start <= bytes.count {
                    var end = start
                    while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
                    let pair = UnsafeBufferPointer(rebasing: bytes[start..<end])
                    let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.count
                    if !pair.isEmpty && decodedEquals(UnsafeBufferPointer(rebasing: pair[..<equals]), wanted) {
                        let value = UnsafeBufferPointer(rebasing: pair[min(equals + 1, pair.count)...])
                        if withDecoded(value, body) { return true }
                    }
                    start = end + 1
                }
                return false
            }
        }
    }

    /// `text` percent-decoded (a `%` not followed by two hex digits stands for itself; `+`
    /// stays `+`).
    public static func percentDecoded(_ text: Substring) -> [UInt8] {
        var text = text
        return text.withUTF8 { encoded in withDecoded(encoded) { Array($0) } }
    }

    /// Whether `encoded`, percent-decoded, equals `wanted`.
    static func decodedEquals(_ encoded: UnsafeBufferPointer<UInt8>, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        var matched = 0
        while index < encoded.count {
            let (byte, width) = decodedByte(encoded, at: index)
            guard matched < wanted.count, wanted[matched] == byte else { return false }
            matched += 1
            index += width
        }
        return matched == wanted.count
    }

    /// Runs `body` on the percent-decoded bytes of `encoded` (decoded form is never longer).
    private static func withDecoded<R>(_ encoded: UnsafeBufferPointer<UInt8>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(encoded.count, 1)) { buffer in
            var index = 0
            var count = 0
            while index < encoded.count {
                let (byte, width) = decodedByte(encoded, at: index)
                buffer[count] = byte
                count += 1
                index += width
            }
            return body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[..<count])))
        }
    }

    /// The byte at `index` after decoding `%XX`, and how many input bytes it took; a `%` not
    /// followed by two hex digits stands for itself.
    private static func decodedByte(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt8, Int) {
        guard bytes[index] == UInt8(ascii: "%"), let high = hexValue(bytes, index + 1), let low = hexValue(bytes, index + 2)
        else { return (bytes[index], 1) }
        return (high << 4 | low, 3)
    }

    private static func hexValue(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> UInt8? {
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return bytes[index] - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return bytes[index] - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return bytes[index] - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
