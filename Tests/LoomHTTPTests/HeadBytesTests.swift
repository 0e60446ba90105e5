import LoomHTTP
import NIOCore
import Testing

@Suite struct HeadBytesTests {
    @Test func piecesLandInOrderAfterWhatTheBufferHeld() {
        var out = ByteBuffer(string: "before|")
        out.writeHead(reserving: 64) { head in
            head.writeStaticString("GET ")
            head.writeString("/ä")
            head.writeBytes(UInt8(ascii: " "), UInt8(ascii: "H"))
            [UInt8]("TTP/1.1".utf8).withUnsafeBytes { head.writeBytes($0) }
            head.writeBytes(UnsafeRawBufferPointer(start: nil, count: 0))
            head.writeString("")
            head.writeBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"))
            head.writeField("Content-Length", "")
            head.writeDecimal(0)
            head.writeDecimal(9)
            head.writeDecimal(10)
            head.writeDecimal(Int.max)
        }
        #expect(String(buffer: out) == "before|GET /ä HTTP/1.1\r\nContent-Length: \r\n0910\(Int.max)")
    }

    /// A head larger than the room asked for (and than the buffer offered) is written whole,
    /// by running the writer again with more room: never cut short, never past the room.
    @Test(arguments: [1, 63, 64, 65, 100, 1000, 5000])
    func aHeadLargerThanItsRoomIsWrittenAgainWhole(size: Int) {
        let value = String(repeating: "v", count: size)
        var out = ByteBuffer(string: "x")
        out.writeHead(reserving: 1) { head in
            head.writeField("X-Big", value)
            head.writeDecimal(size)
        }
        #expect(String(buffer: out) == "xX-Big: \(value)\r\n\(size)")
    }

    @Test func aRunThatOverflowsWritesNothingAndTheRetryWritesEverything() {
        var out = ByteBuffer()
        var counts: [Int] = []
        out.writeHead(reserving: 64) { head in
            // More than any first room this buffer gets (64 asked, its allocation rounded up).
            for _ in 0..<100 { head.writeStaticString("0123456789") }
            counts.append(head.count)
        }
        #expect(out.readableBytes == 1000)
        #expect(counts.last == 1000)
        // The overflowing runs stopped counting at the room they had.
        #expect(counts.dropLast().allSatisfy { $0 < 1000 })
        #expect(counts.count > 1)
    }

    @Test(arguments: [0, 7, 10, 99, 100, 404, 65535, 1_000_000_007, Int.max])
    func decimalsAreWrittenAsTheirDigits(value: Int) {
        var buffer = ByteBuffer()
        buffer.writeHead(reserving: 1) { $0.writeDecimal(value) }
        #expect(String(buffer: buffer) == String(value))
    }
}
