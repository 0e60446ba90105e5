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
        for position in 0..<8 {
            for value in 0...255 {
                var bytes = [UInt8](repeating: filler, count: 8)
                bytes[position] = UInt8(value)
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                #expect(HTTPSyntax.hasControlByte(word) == bytes.contains { $0 < 0x20 }, "byte \(value) at \(position)")
                #expect(HTTPSyntax.hasControlByteOrDEL(word) == bytes.contains { $0 < 0x20 || $0 == 0x7F }, "byte \(value) at \(position)")
            }
        }
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
}
