import NIOCore
import LoomTestSupport
import Testing
@testable import LoomHTTP

/// Chunked encoding: exact bytes, and a round trip through the decoder.
@Suite struct HTTP1ChunkedEncoderTests {
    @Test func writesChunks() {
        var out = ByteBuffer()
        HTTP1ChunkedEncoder.writeChunk(ByteBuffer(string: "hello"), into: &out)
        HTTP1ChunkedEncoder.writeChunk(ByteBuffer(), into: &out)
        HTTP1ChunkedEncoder.writeChunk(ByteBuffer(repeating: 0x61, count: 255), into: &out)
        HTTP1ChunkedEncoder.writeEnd(trailers: nil, into: &out)
        #expect(String(buffer: out) == "5\r\nhello\r\nff\r\n" + String(repeating: "a", count: 255) + "\r\n0\r\n\r\n")
    }

    @Test func hexSizes() {
        for (size, hex) in [(1, "1"), (15, "f"), (16, "10"), (4096, "1000"), (65535, "ffff"), (1_048_577, "100001")] {
            var out = ByteBuffer()
            HTTP1ChunkedEncoder.writeChunk(ByteBuffer(repeating: 0, count: size), into: &out)
            #expect(out.readString(length: hex.utf8.count + 2) == hex + "\r\n")
        }
    }

    @Test func writesTrailers() throws {
        var source = ByteBuffer(string: "0\r\nX-Sum: 1\r\ngrpc-status:  0 \r\n\r\n")
        var decoder = HTTP1BodyDecoder(framing: .chunked, limits: HTTP1Limits())
        guard case .end(let trailers?) = try decoder.next(&source) else { Issue.record("no trailers"); return }
        var out = ByteBuffer()
        HTTP1ChunkedEncoder.writeEnd(trailers: trailers, into: &out)
        #expect(String(buffer: out) == "0\r\nX-Sum: 1\r\ngrpc-status: 0\r\n\r\n")
    }

    @Test func roundTrip() throws {
        var rng = SplitMix64(state: 7)
        var expected: [UInt8] = []
        var wire = ByteBuffer()
        for _ in 0..<50 {
            let chunk = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            expected += chunk
            HTTP1ChunkedEncoder.writeChunk(ByteBuffer(bytes: chunk), into: &wire)
        }
        HTTP1ChunkedEncoder.writeEnd(trailers: nil, into: &wire)
        let decoded = try decodeBody(Array(wire.readableBytesView), framing: .chunked).get()
        #expect(decoded.data == expected)
        #expect(decoded.remaining == 0)
    }
}
