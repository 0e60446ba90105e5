/// Byte-level HTTP/1.x grammar shared by the head parser and the body decoder.
///
/// Everything here works on `UnsafeRawBufferPointer`s over a `ByteBuffer`'s readable bytes and
/// offsets into them; nothing allocates. Character classes are 128-bit masks rather than
/// lookup tables because a global table costs a lazy-initialisation check on every access.
///
/// Bounds: callers pass offsets inside the pointer; unsafe subscripts are unchecked in release
/// builds, so every loop here is written against an explicit end offset.
enum HTTPSyntax {
    static let cr: UInt8 = 13
    static let lf: UInt8 = 10
    static let sp: UInt8 = 32
    static let htab: UInt8 = 9
    static let colon: UInt8 = 58

    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    static let tokenLow: UInt64 = 0x03ff_6cfa_0000_0000
    static let tokenHigh: UInt64 = 0x57ff_ffff_c7ff_fffe
    // uri-host [":" port]: unreserved / pct-encoded / sub-delims / ":" / "[" / "]"
    static let hostLow: UInt64 = 0x2fff_7ff2_0000_0000
    static let hostHigh: UInt64 = 0x47ff_fffe_afff_fffe

    /// Whether `b` is a tchar (RFC 9110 §5.6.2).
    @inline(__always)
    static func isToken(_ b: UInt8) -> Bool {
        b < 64 ? (tokenLow >> UInt64(b)) & 1 == 1 : b < 128 ? (tokenHigh >> UInt64(b &- 64)) & 1 == 1 : false
    }

    /// Whether `b` may appear in a Host value or an authority.
    @inline(__always)
    static func isHostChar(_ b: UInt8) -> Bool {
        b < 64 ? (hostLow >> UInt64(b)) & 1 == 1 : b < 128 ? (hostHigh >> UInt64(b &- 64)) & 1 == 1 : false
    }

    /// field-vchar / SP / HTAB: everything but CTLs (HTAB excepted) and DEL; obs-text allowed.
    @inline(__always)
    static func isFieldValueChar(_ b: UInt8) -> Bool {
        b >= 0x20 ? b != 0x7F : b == htab
    }

    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool { b == sp || b == htab }

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// The high bit of each byte of `word` below 0x20 (a control character: CR, LF, HTAB and
    /// the rest). The classic test for a byte below n (n <= 128): subtracting n from every
    /// byte sets a byte's high bit through a borrow where the byte was below n, and `& ~word`
    /// discards bytes whose high bit was set already. Exact as a yes/no answer; a borrow can
    /// mark a byte above a marked one as well, never one below it, so the lowest mark is
    /// exact too: for a word loaded little-endian (`word(_:at:)`), the first such byte is at
    /// `trailingZeroBitCount / 8`.
    @inline(__always)
    static func controlBytes(_ word: UInt64) -> UInt64 {
        (word &- ones &* 0x20) & ~word & highBits
    }

    /// `controlBytes`, and DEL (0x7F) bytes too: XOR turns DEL bytes into zero bytes, which
    /// the same test (below 1) marks. The lowest mark is exact, as for `controlBytes`.
    @inline(__always)
    static func controlOrDELBytes(_ word: UInt64) -> UInt64 {
        let del = word ^ (ones &* 0x7F)
        return controlBytes(word) | (del &- ones) & ~del & highBits
    }

    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b &- 65 < 26 ? b | 0x20 : b }

    /// The high bit of each byte of `word` that is not an ASCII letter, digit or '-', the
    /// bytes nearly every field name is made of (all tokens). Each class is a range test on
    /// the low seven bits, adding so that the high bit says "at least" (as in `lowercased`),
    /// which never carries into the next byte; letters are folded to lower case first (OR
    /// 0x20 brings only 'A'...'Z' into 'a'...'z'), and a byte past 0x7F is in no class. No
    /// borrow or carry crosses bytes, so every mark is exact.
    @inline(__always)
    static func nonNameBytes(_ word: UInt64) -> UInt64 {
        let low = word & (ones &* 0x7F)
        let folded = low | (ones &* 0x20)
        let letter = (folded &+ ones &* (0x80 - 0x61)) & ~(folded &+ ones &* (0x80 - 0x7B))
        let digit = (low &+ ones &* (0x80 - 0x30)) & ~(low &+ ones &* (0x80 - 0x3A))
        let dash = ~((low ^ (ones &* 0x2D)) &+ ones &* 0x7F)
        return ~((letter | digit | dash) & ~word) & highBits
    }

    /// Compares `wanted.count` bytes at `start` of `raw` with ASCII case folding against `wanted`,
    /// which must already be lower-case. The caller guarantees the range is inside `raw`.
    /// Names of eight bytes or more are compared a word at a time (`lowercased(_:)`), the
    /// last word ending at the last byte: `Content-Length` is two compares, not fourteen.
    @inline(__always)
    static func equalsLowercased(_ raw: UnsafeRawBufferPointer, start: Int, wanted: UnsafeRawBufferPointer) -> Bool {
        let count = wanted.count
        guard count >= 8 else {
            var i = 0
            while i < count {
                if lower(raw[start + i]) != wanted[i] { return false }
                i += 1
            }
            return true
        }
        var at = 0
        while true {
            let word = raw.loadUnaligned(fromByteOffset: start + at, as: UInt64.self)
            guard lowercased(word) == wanted.loadUnaligned(fromByteOffset: at, as: UInt64.self) else { return false }
            if at == count - 8 { return true }
            at = min(at + 8, count - 8)
        }
    }

    /// `lower(_:)` applied to each of the eight bytes of `word`: only 'A'...'Z' change.
    /// Per byte, on its low seven bits: adding 0x80 - 'A' sets the high bit from 'A' up, adding
    /// 0x80 - ('Z' + 1) sets it from past 'Z' up (neither carries into the next byte); a byte
    /// that had its own high bit set is no ASCII letter. The 0x80 left marks an upper-case
    /// letter, and shifted right by two it is the 0x20 that lower-cases it.
    @inline(__always)
    static func lowercased(_ word: UInt64) -> UInt64 {
        let low = word & (ones &* 0x7F)
        let fromA = low &+ ones &* (0x80 - 0x41)
        let pastZ = low &+ ones &* (0x80 - 0x5B)
        let upper = fromA & ~pastZ & ~word & highBits
        return word | (upper >> 2)
    }

    /// Same as `equalsLowercased` for a static literal (the common field names).
    @inline(__always)
    static func equalsLowercased(_ raw: UnsafeRawBufferPointer, start: Int, length: Int, _ wanted: StaticString) -> Bool {
        guard length == wanted.utf8CodeUnitCount else { return false }
        return equalsLowercased(raw, start: start, wanted: UnsafeRawBufferPointer(start: wanted.utf8Start, count: length))
    }

    /// Whether `raw[start..<end]` is exactly `wanted` (case-sensitive, as methods are).
    @inline(__always)
    static func equals(_ raw: UnsafeRawBufferPointer, start: Int, end: Int, _ wanted: StaticString) -> Bool {
        guard end - start == wanted.utf8CodeUnitCount else { return false }
        var i = 0
        while i < wanted.utf8CodeUnitCount {
            if raw[start + i] != wanted.utf8Start[i] { return false }
            i += 1
        }
        return true
    }

    /// What `findLineEnd` found.
    enum LineScan {
        /// A CRLF starts at this offset.
        case crlf(Int)
        /// No CRLF before `end`; resume scanning at this offset when more bytes arrive.
        case needMore(resumeAt: Int)
    }

    /// Finds the next CRLF at or after `from`, looking at bytes before `end` (for the LF, one byte
    /// further if available, up to `raw.count`). A CR not followed by LF is a bare CR; an LF not
    /// preceded by CR is a bare LF: both are rejected here so no line terminator is ever ambiguous.
    @inline(__always)
    static func findLineEnd(_ raw: UnsafeRawBufferPointer, from: Int, end: Int) throws(HTTPParseError) -> LineScan {
        var i = from
        while true {
            // Eight bytes at a time while none is a control character: CR and LF are, and
            // almost nothing else in a head is. From a word with one, straight to that byte.
            i = firstMarked(raw, from: i, end: end, by: controlBytes)
            guard i < end else { break }
            let b = raw[i]
            // One compare rejects the common case: every byte above CR is neither CR nor LF.
            if b <= cr {
                if b == cr {
                    guard i + 1 < raw.count else { return .needMore(resumeAt: i) }
                    guard raw[i + 1] == lf else { throw .bareCR }
                    return .crlf(i)
                }
                if b == lf { throw .bareLF }
            }
            i += 1
        }
        return .needMore(resumeAt: i)
    }

    /// The field line at `start` in one pass, finding its CRLF as it goes, when the line is
    /// complete before `end` (its LF may lie one byte further, up to `raw.count`) and is
    /// well-formed: a token, a colon, optional whitespace, value characters, CRLF. nil for
    /// anything else, which `findLineEnd` and `parseFieldLine` then decide (and name the
    /// error of) exactly as for every line before: for a line this accepts, the first CR or
    /// LF is the CRLF found here and `parseFieldLine` returns the same range.
    @inline(__always)
    static func scanFieldLine(_ raw: UnsafeRawBufferPointer, start: Int, end: Int, base: Int) -> (range: HTTPFieldRange, cr: Int)? {
        // Letters, digits and '-' eight at a time (all tokens), then token by token from the
        // first other byte: the colon, usually.
        var i = firstMarked(raw, from: start, end: end, by: nonNameBytes)
        while i < end, isToken(raw[i]) { i += 1 }
        guard i > start, i < end, raw[i] == colon else { return nil }
        let nameEnd = i
        i += 1
        while i < end, isWhitespace(raw[i]) { i += 1 }
        let valueStart = i
        while true {
            // Eight bytes at a time, and from a word with a control byte (the CR, or an HTAB
            // values may hold) straight to that byte.
            i = firstMarked(raw, from: i, end: end, by: controlOrDELBytes)
            guard i < end else { return nil }
            let b = raw[i]
            if isFieldValueChar(b) {
                i += 1
                continue
            }
            guard b == cr, i + 1 < raw.count, raw[i + 1] == lf else { return nil }
            return (fieldRange(raw, start: start, nameEnd: nameEnd, valueStart: valueStart, end: i, base: base), i)
        }
    }

    /// Parses one field line `raw[start..<end]` (CRLF excluded) into ranges relative to `base`.
    ///
    /// Rejects obs-fold (leading whitespace), whitespace before the colon, empty or non-token
    /// names, and control characters in the value; trims OWS around the value.
    static func parseFieldLine(_ raw: UnsafeRawBufferPointer, start: Int, end: Int, base: Int) throws(HTTPParseError) -> HTTPFieldRange {
        var i = start
        while i < end, isToken(raw[i]) { i += 1 }
        guard i < end, raw[i] == colon else {
            if i == start, i < end, isWhitespace(raw[i]) { throw .obsFold }
            if i < end, isWhitespace(raw[i]) { throw .whitespaceBeforeColon }
            if i < end, raw[i] < 0x20 || raw[i] == 0x7F { throw .controlCharacter }
            throw .invalidFieldName
        }
        guard i > start else { throw .invalidFieldName }
        let nameEnd = i
        i += 1
        while i < end, isWhitespace(raw[i]) { i += 1 }
        let valueStart = i
        while true {
            // Eight bytes at a time while none is a control character or DEL; from a word with
            // one (an HTAB, which values may hold), straight to that byte.
            i = firstMarked(raw, from: i, end: end, by: controlOrDELBytes)
            guard i < end else { break }
            guard isFieldValueChar(raw[i]) else { throw .controlCharacter }
            i += 1
        }
        return fieldRange(raw, start: start, nameEnd: nameEnd, valueStart: valueStart, end: end, base: base)
    }

    /// The ranges of a field line `raw[start..<end]` whose name ends at `nameEnd` and whose
    /// value starts at `valueStart`, relative to `base`, the value trimmed of trailing OWS.
    @inline(__always)
    private static func fieldRange(
        _ raw: UnsafeRawBufferPointer, start: Int, nameEnd: Int, valueStart: Int, end: Int, base: Int
    ) -> HTTPFieldRange {
        var valueEnd = end
        while valueEnd > valueStart, isWhitespace(raw[valueEnd - 1]) { valueEnd -= 1 }
        return HTTPFieldRange(
            nameStart: Int32(truncatingIfNeeded: start - base),
            nameLength: Int32(truncatingIfNeeded: nameEnd - start),
            valueStart: Int32(truncatingIfNeeded: valueStart - base),
            valueLength: Int32(truncatingIfNeeded: valueEnd - valueStart)
        )
    }

    /// From `from`, the offset of the first byte `marks` flags, looking a word at a time, or
    /// where fewer than eight bytes are left before `end`: every byte skipped is unflagged.
    /// `marks` must be one of the word tests whose lowest mark is exact (`controlBytes`,
    /// `controlOrDELBytes`, `nonNameBytes`); the caller goes on byte by byte from there.
    @inline(__always)
    static func firstMarked(_ raw: UnsafeRawBufferPointer, from: Int, end: Int, by marks: (UInt64) -> UInt64) -> Int {
        var i = from
        while i + 8 <= end {
            let found = marks(word(raw, at: i))
            if found != 0 { return i + (found.trailingZeroBitCount >> 3) }
            i += 8
        }
        return i
    }

    /// The eight bytes at `offset`, the first in the lowest byte (the order the marks of the
    /// word tests are read in).
    @inline(__always)
    static func word(_ raw: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Calls `body` with the start and end of each comma-separated list element in
    /// `raw[start..<end]`, trimmed of OWS; empty elements are passed too (as start == end) so
    /// callers decide whether they are tolerated.
    @inline(__always)
    static func forEachListElement(
        _ raw: UnsafeRawBufferPointer, start: Int, end: Int,
        _ body: (Int, Int) throws(HTTPParseError) -> Void
    ) throws(HTTPParseError) {
        var i = start
        while true {
            var elementStart = i
            while elementStart < end, isWhitespace(raw[elementStart]) { elementStart += 1 }
            var j = elementStart
            while j < end, raw[j] != UInt8(ascii: ",") { j += 1 }
            var elementEnd = j
            while elementEnd > elementStart, isWhitespace(raw[elementEnd - 1]) { elementEnd -= 1 }
            try body(elementStart, elementEnd)
            if j >= end { return }
            i = j + 1
        }
    }

    /// Parses 1*DIGIT as a non-negative Int; nil for empty, non-digits, or overflow.
    static func parseDecimal(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) -> Int? {
        guard start < end else { return nil }
        var value = 0
        var i = start
        while i < end {
            let digit = raw[i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int(digit))
            guard !o1, !o2 else { return nil }
            value = s
            i += 1
        }
        return value
    }

    /// A lower-cased copy of `raw[start..<end]` as a String (one allocation only past 15 bytes).
    static func lowercasedString(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) -> String {
        String(unsafeUninitializedCapacity: end - start) { out in
            for k in 0..<(end - start) { out[k] = lower(raw[start + k]) }
            return end - start
        }
    }

    /// The bytes `raw[start..<end]` as a String; callers only pass validated ASCII/UTF-8.
    @inline(__always)
    static func string(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<end]), as: UTF8.self)
    }

    /// The method `raw[start..<end]` as a String: a literal for the methods nearly every
    /// request carries. A literal is neither decoded nor reference counted, where decoding
    /// even three bytes validates them one by one (about 120 instructions a request).
    static func methodString(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) -> String {
        if equals(raw, start: start, end: end, "GET") { return "GET" }
        if equals(raw, start: start, end: end, "POST") { return "POST" }
        if equals(raw, start: start, end: end, "HEAD") { return "HEAD" }
        return string(raw, start: start, end: end)
    }

    /// The reason phrase `raw[start..<end]` as a String, the literal "OK" for the usual one
    /// (as `methodString`).
    static func reasonString(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) -> String {
        equals(raw, start: start, end: end, "OK") ? "OK" : string(raw, start: start, end: end)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    package var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    package var trimmingSpaces: Substring { Substring(self).trimmingSpaces }
}
