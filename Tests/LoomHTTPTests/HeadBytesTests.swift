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

    /// Around the room the buffer offers: a head that fills it exactly is written in one run,
    /// one byte more takes a second run; either way it is written whole and after the
    /// buffer's earlier bytes.
    @Test(arguments: [-1, 0, 1, 2, 500, 5000])
    func aHeadIsWrittenWholeWhateverItsRoom(overRoom: Int) {
        var out = ByteBuffer(string: "x")
        out.reserveCapacity(minimumWritableBytes: 100)
        let offered = out.writableBytes
        // A field line is its value plus "X: " and CRLF.
        let value = String(repeating: "v", count: offered + overRoom - 5)
        var runs = 0
        out.writeHead(reserving: 1) { head in
            runs += 1
            head.writeField("X", value)
        }
        #expect(String(buffer: out) == "xX: \(value)\r\n")
        switch overRoom {
        case ...0: #expect(runs == 1)
        case 1...2: #expect(runs == 2)
        default: #expect(runs > 1 && runs <= 8)  // the room doubles each time
        }
    }

    @Test(arguments: [0, 7, 10, 99, 100, 404, 65535, 1_000_000_007, Int.max])
    func decimalsAreWrittenAsTheirDigits(value: Int) {
        var buffer = ByteBuffer()
        buffer.writeHead(reserving: 1) { $0.writeDecimal(value) }
        #expect(String(buffer: buffer) == String(value))
    }

    /// Header fields outgrowing the room in the middle of a run of verbatim lines, or of a
    /// line that is rewritten: the retry writes what a roomy buffer gets in one run.
    @Test(arguments: [1, 40, 90, 150])
    func fieldsOutgrowingTheRoomComeOutAsInARoomyBuffer(room: Int) throws {
        var lines = (0..<10).map { "X-Field-\($0): value number \($0)\r\n" }
        lines[6] = "X-Odd:\t spaced out  \r\n"
        var bytes = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: h\r\n" + lines.joined() + "\r\n")
        var parser = HTTP1HeadParser()
        let fields = try #require(try parser.parseRequestHead(&bytes)).headers
        func written(into out: inout ByteBuffer, room: Int) {
            out.writeHead(reserving: room) { head in
                fields.writeFields(into: &head) { $0 != 3 }  // X-Field-2
            }
        }
        var roomy = ByteBuffer()
        roomy.reserveCapacity(4096)
        written(into: &roomy, room: 4096)
        var tight = ByteBuffer()
        written(into: &tight, room: room)
        #expect(String(buffer: tight) == String(buffer: roomy))
        #expect(String(buffer: roomy).contains("X-Odd: spaced out\r\nX-Field-7"))
        #expect(!String(buffer: roomy).contains("X-Field-2"))
    }
}
