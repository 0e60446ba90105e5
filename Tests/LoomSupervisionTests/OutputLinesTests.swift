import LoomSupervision
import Testing

/// A child's output split into log lines.
@Suite struct OutputLinesTests {
    @Test func linesSplitAnywhereComeOutWhole() {
        let text = Array("first\r\nsecond\n\nlast".utf8)
        for cut in 0...text.count {
            var lines = OutputLines()
            let read = lines.read(text[..<cut]) + lines.read(text[cut...])
            #expect(read == ["first", "second", ""], "cut at \(cut)")
            #expect(lines.finish() == "last")
            #expect(lines.finish() == nil)
        }
    }

    @Test func aLineWithoutEndIsLoggedInPieces() {
        var lines = OutputLines(limit: 4)
        #expect(lines.read(Array("abcdefghij\n".utf8)) == ["abcd", "efgh", "ij"])
    }
}
