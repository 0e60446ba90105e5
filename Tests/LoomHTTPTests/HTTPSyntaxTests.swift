import LoomTestSupport
import NIOCore
import Testing

@testable import LoomHTTP

/// The word-at-a-time scans of `HTTPSyntax` against their byte-by-byte definitions.
@Suite struct HTTPSyntaxTests {
    /// Every byte value at every position of a word, among fillers on both sides of the
    /// tested ranges (0x20 is the lowest byte that is no control character, 0x80 and 0xFF
    /// have the high bit the test masks out).
    @Test(arguments: [UInt8(0x20), 0x61, 0x7E, 0x80, 0xFF])
    func wordTestsAgreeWithTheByteDefinitions(filler: UInt8) {
        Self.forEverySingleByteWord(filler: filler) { bytes, word, label in
            #expect((HTTPSyntax.controlBytes(word) != 0) == bytes.contains { $0 < 0x20 }, "\(label)")
            #expect((HTTPSyntax.controlOrDELBytes(word) != 0) == bytes.contains { $0 < 0x20 || $0 == 0x7F }, "\(label)")
        }
    }

    /// Calls `body` with each word made of `filler` bytes and one other byte, for every byte
    /// value at every position: its bytes, the word loaded as the scans load it, and a label.
    static func forEverySingleByteWord(filler: UInt8, _ body: (_ bytes: [UInt8], _ word: UInt64, _ label: String) -> Void) {
        for position in 0..<8 {
            for value in 0...255 {
                var bytes = [UInt8](repeating: filler, count: 8)
                bytes[position] = UInt8(value)
                body(bytes, bytes.withUnsafeBytes { HTTPSyntax.word($0, at: 0) }, "byte \(value) at \(position)")
            }
        }
    }

    /// The first control byte (or control or DEL byte) of a word, as the lowest mark of
    /// `controlBytes` (`controlOrDELBytes`), for two chosen bytes at every pair of positions:
    /// a borrow out of the lower one must not move the answer, whatever the upper one is.
    @Test func theLowestControlMarkIsTheFirstControlByte() {
        let values: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x3A, 0x7E, 0x7F, 0x80, 0xA0, 0xFF]
        for low in 0..<8 {
            for high in (low + 1)..<8 {
                for a in values {
                    for b in values {
                        var bytes = [UInt8](repeating: UInt8(ascii: "v"), count: 8)
                        bytes[low] = a
                        bytes[high] = b
                        let word = bytes.withUnsafeBytes { HTTPSyntax.word($0, at: 0) }
                        let marks = HTTPSyntax.controlOrDELBytes(word)
                        let first = bytes.firstIndex { $0 < 0x20 || $0 == 0x7F }
                        #expect((marks == 0 ? nil : marks.trailingZeroBitCount >> 3) == first, "\(bytes)")
                        let controls = HTTPSyntax.controlBytes(word)
                        let firstControl = bytes.firstIndex { $0 < 0x20 }
                        #expect((controls == 0 ? nil : controls.trailingZeroBitCount >> 3) == firstControl, "\(bytes)")
                    }
                }
            }
        }
    }

    /// The name-byte classes against their definition: every byte value at every position,
    /// among fillers inside and outside them.
    @Test(arguments: [UInt8(ascii: "a"), UInt8(ascii: "Z"), UInt8(ascii: "5"), UInt8(ascii: "-"), UInt8(ascii: ":"), 0x80])
    func nameBytesAgreeWithTheByteDefinition(filler: UInt8) {
        func isNameByte(_ b: UInt8) -> Bool {
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D
        }
        Self.forEverySingleByteWord(filler: filler) { bytes, word, label in
            let expected = bytes.enumerated().reduce(UInt64(0)) { marks, byte in
                isNameByte(byte.element) ? marks : marks | UInt64(0x80) << (8 * byte.offset)
            }
            #expect(HTTPSyntax.nonNameBytes(word) == expected, "\(label)")
        }
    }

    /// The word lower-casing against `lower(_:)`: every byte value at every position, among
    /// fillers that are upper-case, lower-case, below 'A', past 'Z' and past 0x7F.
    @Test(arguments: [UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "@"), UInt8(ascii: "["), 0xC1])
    func wordLowercasingAgreesWithTheByteDefinition(filler: UInt8) {
        Self.forEverySingleByteWord(filler: filler) { bytes, word, label in
            let expected = bytes.map(HTTPSyntax.lower).withUnsafeBytes { HTTPSyntax.word($0, at: 0) }
            #expect(HTTPSyntax.lowercased(word) == expected, "\(label)")
        }
    }

    /// Case-folding comparison at every length around the word size, with the one differing
    /// byte at every position: a byte that differs from the wanted one only in its 0x20 bit
    /// but is no letter (CR against '-', '@' against '`', 0xC1 against 0xE1) is a difference.
    @Test func caseFoldingComparisonFindsEveryDifference() {
        let name = Array("x-forwarded-proto-and-more".utf8)
        for length in 1...name.count {
            let wanted = Array(name.prefix(length))
            let upper = wanted.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
            let padded = [UInt8(ascii: "#")] + upper + [UInt8(ascii: "#")]
            padded.withUnsafeBytes { raw in
                wanted.withUnsafeBytes { #expect(HTTPSyntax.equalsLowercased(raw, start: 1, wanted: $0), "length \(length)") }
            }
            for position in 0..<length {
                var other = padded
                let original = other[position + 1]
                other[position + 1] = original == UInt8(ascii: "-") ? 0x0D : original ^ 0x01
                other.withUnsafeBytes { raw in
                    wanted.withUnsafeBytes { #expect(!HTTPSyntax.equalsLowercased(raw, start: 1, wanted: $0), "length \(length) at \(position)") }
                }
            }
        }
        let pairs: [(UInt8, UInt8)] = [(0x40, 0x60), (0xC1, 0xE1), (0x5B, 0x7B)]
        for (sent, wanted) in pairs {
            let raw = [UInt8](repeating: sent, count: 9), expected = [UInt8](repeating: wanted, count: 9)
            raw.withUnsafeBytes { raw in
                expected.withUnsafeBytes { #expect(!HTTPSyntax.equalsLowercased(raw, start: 0, wanted: $0), "\(sent) against \(wanted)") }
            }
        }
    }

    /// The one-pass field line against the two passes it stands in for (`findLineEnd`, then
    /// `parseFieldLine`): on lines made of the bytes that matter (token bytes, colon,
    /// whitespace, CR, LF, other controls, DEL, obs-text), complete or cut short, it accepts
    /// exactly the lines they accept, with the same range and CR, and leaves the rest to them.
    @Test func oneFieldLinePassAgreesWithTheTwoPasses() {
        let plain: [UInt8] = Array("aZ0-!~".utf8) + [0x20]
        let special: [UInt8] = [UInt8(ascii: ":"), 0x09, 0x0D, 0x0A, 0x00, 0x7F, 0x80, 0xFF]
        var random = SplitMix64(state: 0x5EED_F1E1D)
        var accepted = 0
        for round in 0..<40_000 {
            var line: [UInt8] = []
            // Half the lines start like a field; one byte in eight is special, so both
            // outcomes are well covered and values reach past a word.
            if round % 2 == 0 { line += Array("Name: ".utf8) }
            for _ in 0..<Int.random(in: 0...24, using: &random) {
                let pool = Int.random(in: 0..<8, using: &random) == 0 ? special : plain
                line.append(pool.randomElement(using: &random)!)
            }
            if round % 3 != 0 { line += [0x0D, 0x0A] }
            line.withUnsafeBytes { raw in
                let fast = HTTPSyntax.scanFieldLine(raw, start: 0, end: raw.count, base: 0)
                var slow: (range: HTTPFieldRange, cr: Int)?
                if case .crlf(let cr)? = try? HTTPSyntax.findLineEnd(raw, from: 0, end: raw.count),
                   let range = try? HTTPSyntax.parseFieldLine(raw, start: 0, end: cr, base: 0) {
                    slow = (range, cr)
                }
                #expect(fast?.range == slow?.range && fast?.cr == slow?.cr, "\(line)")
                if fast != nil { accepted += 1 }
            }
        }
        #expect(accepted > 5_000)
    }

    /// A value byte at every offset of the first three words of a line: accepted and trimmed
    /// exactly as the byte-by-byte rule says, wherever it falls against the word boundaries.
    @Test func fieldValuesAreCheckedAtEveryOffset() throws {
        for offset in 0..<24 {
            for value in 0...255 {
                let b = UInt8(value)
                var line = Array("X-Test: ".utf8) + [UInt8](repeating: UInt8(ascii: "v"), count: 24)
                line[8 + offset] = b
                let outcome = line.withUnsafeBytes { raw in
                    Result { () throws(HTTPParseError) -> HTTPFieldRange in
                        try HTTPSyntax.parseFieldLine(raw, start: 0, end: raw.count, base: 0)
                    }
                }
                let allowed = b == HTTPSyntax.htab || (b >= 0x20 && b != 0x7F)
                switch outcome {
                case .success(let field):
                    #expect(allowed, "byte \(value) at \(offset)")
                    // Whitespace at the value's start or end is trimmed; anywhere else it stays.
                    let trimmedStart = offset == 0 && HTTPSyntax.isWhitespace(b) ? 9 : 8
                    let trimmedEnd = offset == 23 && HTTPSyntax.isWhitespace(b) ? 31 : 32
                    #expect(field.valueStart == Int32(trimmedStart) && field.valueEnd == trimmedEnd, "byte \(value) at \(offset)")
                case .failure(let error):
                    #expect(!allowed && error == .controlCharacter, "byte \(value) at \(offset): \(error)")
                }
            }
        }
    }

    /// Trailing whitespace is trimmed across word boundaries; an all-whitespace value is empty;
    /// HTAB inside a value and obs-text at its end stay.
    @Test(arguments: [
        ("X: value \t \t  \t\t   ", "value"), ("X:  \t   \t   \t  ", ""), ("X: a\tb\t\tc", "a\tb\t\tc"),
        ("X: 0123456789abcdef\u{FF}", "0123456789abcdef\u{FF}"), ("X:\t\tv", "v"),
    ])
    func valuesAreTrimmed(line: String, value: String) throws {
        let bytes = Array(line.unicodeScalars.map { UInt8($0.value) })
        let field = try bytes.withUnsafeBytes { raw in try HTTPSyntax.parseFieldLine(raw, start: 0, end: raw.count, base: 0) }
        #expect(Array(bytes[Int(field.valueStart)..<field.valueEnd]) == value.unicodeScalars.map { UInt8($0.value) })
    }

    /// A window shorter than the bytes at hand (the head size limit): bytes past it are not
    /// scanned, except the LF after a CR that is the window's last byte.
    @Test func theWindowEndIsRespected() throws {
        for length in 1..<20 {
            var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 24)
            bytes[length - 1] = HTTPSyntax.cr
            bytes[length] = HTTPSyntax.lf
            try bytes.withUnsafeBytes { raw in
                guard case .crlf(let at) = try HTTPSyntax.findLineEnd(raw, from: 0, end: length) else {
                    Issue.record("no line end for a window of \(length)")
                    return
                }
                #expect(at == length - 1)
            }
            var open = [UInt8](repeating: UInt8(ascii: "a"), count: 24)
            open[length] = HTTPSyntax.lf  // past the window: not looked at
            try open.withUnsafeBytes { raw in
                guard case .needMore(let resumeAt) = try HTTPSyntax.findLineEnd(raw, from: 0, end: length) else {
                    Issue.record("a line end past the window of \(length)")
                    return
                }
                #expect(resumeAt == length)
            }
        }
    }

    /// CR and LF at every offset: a CRLF ends the line there, a bare CR or LF is refused.
    @Test func lineEndsAreFoundAtEveryOffset() throws {
        for offset in 0..<24 {
            var line = [UInt8](repeating: UInt8(ascii: "a"), count: 32)
            line[offset] = HTTPSyntax.cr
            line[offset + 1] = HTTPSyntax.lf
            try line.withUnsafeBytes { raw in
                guard case .crlf(let at) = try HTTPSyntax.findLineEnd(raw, from: 0, end: raw.count) else {
                    Issue.record("no line end found at \(offset)")
                    return
                }
                #expect(at == offset)
            }
            for bare in [HTTPSyntax.cr, HTTPSyntax.lf] {
                var broken = [UInt8](repeating: UInt8(ascii: "a"), count: 32)
                broken[offset] = bare
                broken.withUnsafeBytes { raw in
                    #expect(throws: bare == HTTPSyntax.cr ? HTTPParseError.bareCR : .bareLF) {
                        try HTTPSyntax.findLineEnd(raw, from: 0, end: raw.count)
                    }
                }
            }
        }
        // No line end: scanning resumes where it stopped, and a CR as the last byte waits for
        // the byte after it.
        let open = [UInt8](repeating: UInt8(ascii: "a"), count: 19) + [HTTPSyntax.cr]
        try open.withUnsafeBytes { raw in
            guard case .needMore(let resumeAt) = try HTTPSyntax.findLineEnd(raw, from: 0, end: raw.count) else {
                Issue.record("a line end without its LF")
                return
            }
            #expect(resumeAt == 19)
        }
    }

    /// The method and reason strings are the bytes, whether they come out as a literal (the
    /// usual values) or decoded: a near miss (case, a prefix, a longer token) is decoded.
    @Test(arguments: ["GET", "POST", "HEAD", "PUT", "get", "GE", "GETS", "POSTS", "HEA", "M-SEARCH", "", "OK", "Ok", "OKAY", "O", "Not Found"])
    func commonStringsAreTheirBytes(text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            #expect(HTTPSyntax.methodString(raw, start: 0, end: raw.count) == text)
            #expect(HTTPSyntax.reasonString(raw, start: 0, end: raw.count) == text)
        }
        // Inside a larger buffer, only the range counts.
        let framed = Array("xx\(text)yy".utf8)
        framed.withUnsafeBytes { raw in
            #expect(HTTPSyntax.methodString(raw, start: 2, end: raw.count - 2) == text)
            #expect(HTTPSyntax.reasonString(raw, start: 2, end: raw.count - 2) == text)
        }
    }
}
