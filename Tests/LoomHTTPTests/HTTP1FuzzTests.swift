import NIOCore
import LoomTestSupport
import Testing
@testable import LoomHTTP

/// Seeded fuzzing: random and mutated inputs must never crash the parser or decoder, never
/// yield a head whose field ranges leave its bytes, and never consume more than was given.
/// Seeds are fixed so any failure reproduces.
@Suite struct HTTP1FuzzTests {
    /// An alphabet biased towards the bytes that matter to HTTP/1 grammar.
    static let alphabet: [UInt8] = Array("GET POST HTTP/1.1 \r\n\r\n:;,=\"\\\t Host: Content-Length: Transfer-Encoding: chunked 0123456789abcdefABCDEF/?*".utf8) + [0, 0x7F, 0x80, 0xFF, 10, 13]

    static let seeds: [String] = [
        "GET /a?b HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        "HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\n",
    ]

    /// Checks the structural invariants of a head's field block.
    static func checkBlock(_ block: HTTPHeaderBlock) {
        let count = block.bytes.readableBytes
        #expect(block.bytes.readerIndex == 0)
        for f in block.fields {
            #expect(f.nameStart >= 0 && f.nameLength > 0 && Int(f.nameStart) + Int(f.nameLength) <= count)
            #expect(f.valueStart >= 0 && f.valueLength >= 0 && Int(f.valueStart) + Int(f.valueLength) <= count)
        }
        if count > 0 { #expect(block.startLineLength <= count) }
    }

    /// Feeds `input` in random pieces to both parsers and the decoders they select.
    @discardableResult
    static func exercise(_ input: [UInt8], rng: inout SplitMix64, limits: HTTP1Limits) -> Int {
        var heads = 0
        var requestParser = HTTP1HeadParser(limits: limits)
        var responseParser = HTTP1HeadParser(limits: limits)
        var requestBuffer = ByteBuffer()
        var responseBuffer = ByteBuffer()
        var fed = 0
        var requestDone = false
        var responseDone = false
        while fed < input.count, !(requestDone && responseDone) {
            let next = min(input.count, fed + Int.random(in: 1...max(1, input.count), using: &rng))
            requestBuffer.writeBytes(input[fed..<next])
            responseBuffer.writeBytes(input[fed..<next])
            fed = next
            if !requestDone {
                let before = requestBuffer.readableBytes
                do {
                    if let head = try requestParser.parseRequestHead(&requestBuffer) {
                        checkBlock(head.headers)
                        #expect(before - requestBuffer.readableBytes >= head.headers.bytes.readableBytes)
                        drain(head.framing, &requestBuffer, limits: limits)
                        requestDone = true
                        heads += 1
                    }
                } catch {
                    #expect(error.status >= 400)
                    requestDone = true
                }
            }
            if !responseDone {
                do {
                    if let head = try responseParser.parseResponseHead(&responseBuffer, requestMethod: "GET") {
                        checkBlock(head.headers)
                        #expect(!(head.framing == .untilClose && head.keepAlive))
                        drain(head.framing, &responseBuffer, limits: limits)
                        responseDone = true
                        heads += 1
                    }
                } catch {
                    responseDone = true
                }
            }
        }
        return heads
    }

    /// Runs a body decoder over what is left, checking it never over-consumes.
    static func drain(_ framing: HTTPBodyFraming, _ buffer: inout ByteBuffer, limits: HTTP1Limits) {
        var decoder = HTTP1BodyDecoder(framing: framing, limits: limits)
        var total = 0
        do {
            while let event = try decoder.next(&buffer) {
                switch event {
                case .data(let slice): total += slice.readableBytes
                case .end(let trailers): if let trailers { checkBlock(trailers) }
                }
            }
        } catch {}
        #expect(total == decoder.bytesDecoded)
    }

    @Test func randomBytes() {
        var rng = SplitMix64(state: 0x10AD)
        let limits = HTTP1Limits(maxHeadBytes: 512, maxURIBytes: 64, maxFields: 16, maxBodyBytes: 1024, maxChunkLineBytes: 32)
        for _ in 0..<10_000 {
            let length = Int.random(in: 0...200, using: &rng)
            let input = (0..<length).map { _ in
                Bool.random(using: &rng) ? Self.alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            Self.exercise(input, rng: &rng, limits: limits)
        }
    }

    @Test func mutatedValidMessages() {
        var rng = SplitMix64(state: 0xBEEF)
        let limits = HTTP1Limits(maxHeadBytes: 512, maxURIBytes: 64, maxFields: 16, maxBodyBytes: 1024, maxChunkLineBytes: 32)
        var heads = 0
        for _ in 0..<10_000 {
            var input = bytes(Self.seeds.randomElement(using: &rng)!)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<input.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: input[at] = Self.alphabet.randomElement(using: &rng)!
                case 1: input.insert(Self.alphabet.randomElement(using: &rng)!, at: at)
                default: input.remove(at: at)
                }
                if input.isEmpty { break }
            }
            heads += Self.exercise(input, rng: &rng, limits: limits)
        }
        // The mutations must leave enough inputs valid for the success paths to be fuzzed too.
        #expect(heads > 1_000)
    }
}
