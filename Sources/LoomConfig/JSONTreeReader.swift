/// Strict JSON (RFC 8259) read straight into a `ConfigNode` tree, keeping object keys in the
/// order they were written (a route given to the control socket is written back to the file
/// in the user's key order).
///
/// Its own reader rather than Foundation's plus a second parse for the order: a YAML parser
/// reads some JSON differently (it folds U+0085 and U+2028 in strings, refuses escaped
/// surrogate pairs and leading tabs), and what is checked must be what is applied.
struct JSONTreeReader {
    private let bytes: [UInt8]
    private var index = 0

    /// Objects and arrays nested deeper than this are refused rather than risking the stack.
    static let maxDepth = 64

    /// Why `text` is not JSON, with the byte offset where reading stopped.
    struct Failure: Error, Equatable {
        var message: String
    }

    static func parse(_ text: String) -> Result<ConfigNode, Failure> {
        var reader = JSONTreeReader(bytes: Array(text.utf8))
        do throws(Failure) {
            reader.skipWhitespace()
            let node = try reader.value(depth: 0)
            reader.skipWhitespace()
            guard reader.index == reader.bytes.count else { throw reader.failure("unexpected text after the value") }
            return .success(node)
        } catch {
            return .failure(error)
        }
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func failure(_ message: String) -> Failure {
        Failure(message: "\(message) at byte \(index)")
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        guard current == byte else { throw failure("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    private mutating func value(depth: Int) throws(Failure) -> ConfigNode {
        guard let byte = current else { throw failure("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .boolean(true))
        case UInt8(ascii: "f"): return try literal("false", .boolean(false))
        case UInt8(ascii: "n"): return try literal("null", ConfigNode(.scalar(ConfigScalar(kind: .null, text: "null")), at: nil))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("unexpected character")
        }
    }

    private mutating func literal(_ word: String, _ node: ConfigNode) throws(Failure) -> ConfigNode {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw failure("unexpected character")
        }
        index += expected.count
        return node
    }

    private mutating func object(depth: Int) throws(Failure) -> ConfigNode {
        var entries: [ConfigNode.Entry] = []
        try elements(closedBy: UInt8(ascii: "}"), depth: depth) { reader throws(Failure) in
            guard reader.current == UInt8(ascii: "\"") else { throw reader.failure("expected a string key") }
            let key = try reader.string()
            guard !entries.contains(where: { $0.key == key }) else { throw reader.failure("duplicate key \"\(key)\"") }
            reader.skipWhitespace()
            try reader.expect(UInt8(ascii: ":"))
            reader.skipWhitespace()
            entries.append(ConfigNode.Entry(key: key, keyLocation: nil, value: try reader.value(depth: depth)))
        }
        return ConfigNode(.map(entries), at: nil)
    }

    private mutating func array(depth: Int) throws(Failure) -> ConfigNode {
        var elements: [ConfigNode] = []
        try self.elements(closedBy: UInt8(ascii: "]"), depth: depth) { reader throws(Failure) in
            elements.append(try reader.value(depth: depth))
        }
        return ConfigNode(.sequence(elements), at: nil)
    }

    /// Reads the comma-separated elements of an object or array (the opening bracket is
    /// `current`) through `element`, up to and including `close`.
    private mutating func elements(
        closedBy close: UInt8, depth: Int, _ element: (inout JSONTreeReader) throws(Failure) -> Void
    ) throws(Failure) {
        guard depth <= Self.maxDepth else { throw failure("nested more than \(Self.maxDepth) levels deep") }
        index += 1
        skipWhitespace()
        if current == close {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try element(&self)
            skipWhitespace()
            guard current == UInt8(ascii: ",") else { return try expect(close) }
            index += 1
        }
    }

    private mutating func string() throws(Failure) -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        var run = index
        /// Appends the unescaped bytes read since `run` (already valid UTF-8: they came from a String).
        func flush(_ end: Int, into scalars: inout String.UnicodeScalarView) {
            scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars)
        }
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""):
                flush(index, into: &scalars)
                index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush(index, into: &scalars)
                index += 1
                scalars.append(try escape())
                run = index
            case 0..<0x20:
                throw failure("control character in a string (escape it)")
            default:
                index += 1
            }
        }
        throw failure("unterminated string")
    }

    private mutating func escape() throws(Failure) -> Unicode.Scalar {
        guard let byte = current else { throw failure("unterminated string") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{8}"
        case UInt8(ascii: "f"): return "\u{C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hexUnit()
            if (0xD800..<0xDC00).contains(unit) {
                // A high surrogate must be followed by an escaped low one.
                guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                    throw failure("unpaired surrogate in \\u escape")
                }
                index += 2
                let low = try hexUnit()
                guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate in \\u escape") }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(unit) else { throw failure("unpaired surrogate in \\u escape") }
            return scalar
        default:
            index -= 1
            throw failure("invalid escape")
        }
    }

    private mutating func hexUnit() throws(Failure) -> UInt32 {
        guard bytes.count - index >= 4 else { throw failure("invalid \\u escape") }
        var unit: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid \\u escape")
            }
            unit = unit << 4 | UInt32(digit)
            index += 1
        }
        return unit
    }

    private mutating func number() throws(Failure) -> ConfigNode {
        let start = index
        func digits(_ reader: inout JSONTreeReader) -> Int {
            let from = reader.index
            while let byte = reader.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { reader.index += 1 }
            return reader.index - from
        }
        if current == UInt8(ascii: "-") { index += 1 }
        let leadingZero = current == UInt8(ascii: "0")
        let whole = digits(&self)
        guard whole > 0, !(leadingZero && whole > 1) else { throw failure("invalid number") }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            index += 1
            isInteger = false
            guard digits(&self) > 0 else { throw failure("invalid number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            isInteger = false
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw failure("invalid number") }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger {
            let kind: ConfigScalar.Kind = Int(text).map { .integer($0) } ?? .hugeInteger
            return ConfigNode(.scalar(ConfigScalar(kind: kind, text: text)), at: nil)
        }
        guard let value = Double(text), value.isFinite else { throw failure("number out of range") }
        return ConfigNode(.scalar(ConfigScalar(kind: .float(value), text: text)), at: nil)
    }
}
