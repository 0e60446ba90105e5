import NIOCore
import Testing
@testable import LoomHTTP

/// Body decoding: fixed length, chunked (extensions, trailers, every split offset), until-close,
/// one test per chunked rejection rule, and the body limit.
@Suite struct HTTP1BodyDecoderTests {
    static let chunkedSample = "5\r\nhello\r\n6;name=value;q=\"a \\\"b\\\" c\" ; flag\r\n world\r\n00A\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other:  two \r\n\r\nNEXT"

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let result = try decodeBody(bytes(Self.chunkedSample), framing: .chunked).get()
        #expect(String(decoding: result.data, as: UTF8.self) == "hello world0123456789")
        #expect(result.trailers == [.init(name: "X-Checksum", value: "abc"), .init(name: "X-Other", value: "two")])
        #expect(result.remaining == 4)
    }

    @Test func chunkedIsSplitInvariant() throws {
        let input = bytes(Self.chunkedSample)
        let whole = try decodeBody(input, framing: .chunked).get()
        for k in 0...input.count {
            let split = try decodeBody(input, framing: .chunked, cuts: [k]).get()
            #expect(split.data == whole.data, "split at \(k)")
            #expect(split.trailers == whole.trailers, "split at \(k)")
            #expect(split.remaining == whole.remaining, "split at \(k)")
        }
        let bytewise = try decodeBody(input, framing: .chunked, cuts: Array(0..<input.count)).get()
        #expect(bytewise.data == whole.data)
        #expect(bytewise.trailers == whole.trailers)
    }

    @Test func chunkedWithoutTrailers() throws {
        let result = try decodeBody(bytes("3\r\nabc\r\n0\r\n\r\n"), framing: .chunked).get()
        #expect(result.data == bytes("abc"))
        #expect(result.trailers == nil)
    }

    @Test func chunkSizeForms() throws {
        #expect(try decodeBody(bytes("A\r\n0123456789\r\n0\r\n\r\n"), framing: .chunked).get().data.count == 10)
        #expect(try decodeBody(bytes("0000a\r\n0123456789\r\n0\r\n\r\n"), framing: .chunked).get().data.count == 10)
        #expect(try decodeBody(bytes("1 ; ext = \"v\"\r\nx\r\n0\r\n\r\n"), framing: .chunked).get().data == bytes("x"))
        #expect(try decodeBody(bytes("1;a=b;c\r\nx\r\n0;last\r\n\r\n"), framing: .chunked).get().data == bytes("x"))
    }

    /// A chunked body and the error it must produce.
    struct Rejection: Sendable, CustomTestStringConvertible {
        var name: String
        var input: String
        var error: HTTPParseError
        var testDescription: String { name }
    }

    static let rejections: [Rejection] = [
        .init(name: "non-hex size", input: "x\r\n", error: .invalidChunkSize),
        .init(name: "empty size", input: "\r\n", error: .invalidChunkSize),
        .init(name: "leading space", input: " 5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "leading tab", input: "\t5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "plus sign", input: "+5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "minus sign", input: "-5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "0x prefix", input: "0x5\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "trailing space without extension", input: "5 \r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "size overflow", input: "8000000000000000\r\n", error: .chunkSizeOverflow),
        .init(name: "long size overflow", input: "fffffffffffffffffff\r\n", error: .chunkSizeOverflow),
        .init(name: "data not followed by crlf", input: "5\r\nhelloXX0\r\n\r\n", error: .invalidChunkTerminator),
        .init(name: "data followed by cr only", input: "5\r\nhello\rX", error: .invalidChunkTerminator),
        .init(name: "data followed by bare lf", input: "5\r\nhello\n0\r\n\r\n", error: .invalidChunkTerminator),
        .init(name: "data longer than declared", input: "3\r\nhello\r\n0\r\n\r\n", error: .invalidChunkTerminator),
        .init(name: "empty extension", input: "5;\r\nhello\r\n0\r\n\r\n", error: .invalidChunkExtension),
        .init(name: "extension without name", input: "5;=v\r\nhello\r\n0\r\n\r\n", error: .invalidChunkExtension),
        .init(name: "extension without value", input: "5;a=\r\nhello\r\n0\r\n\r\n", error: .invalidChunkExtension),
        .init(name: "extension value with space", input: "5;a=b c\r\nhello\r\n0\r\n\r\n", error: .invalidChunkExtension),
        .init(name: "unterminated quoted extension", input: "5;a=\"bc\r\nhello\r\n0\r\n\r\n", error: .invalidChunkExtension),
        .init(name: "control char in quoted extension", input: "5;a=\"b\u{1}\"\r\nhello\r\n0\r\n\r\n", error: .invalidChunkExtension),
        .init(name: "garbage after size", input: "5a!\r\nhello\r\n0\r\n\r\n", error: .invalidChunkSize),
        .init(name: "bare lf after size", input: "5\nhello\r\n0\r\n\r\n", error: .bareLF),
        .init(name: "bare cr after size", input: "5\rhello\r\n0\r\n\r\n", error: .bareCR),
        .init(name: "content-length trailer", input: "0\r\nContent-Length: 5\r\n\r\n", error: .invalidTrailer),
        .init(name: "transfer-encoding trailer", input: "0\r\ntransfer-encoding: chunked\r\n\r\n", error: .invalidTrailer),
        .init(name: "obs-fold in trailer", input: "0\r\nX-A: a\r\n b\r\n\r\n", error: .obsFold),
        .init(name: "bare lf in trailer", input: "0\r\nX-A: a\n\r\n", error: .bareLF),
        .init(name: "nul in trailer", input: "0\r\nX-A: \u{0}\r\n\r\n", error: .controlCharacter),
    ]

    @Test(arguments: rejections)
    func rejects(_ sample: Rejection) {
        let input = bytes(sample.input)
        #expect(decodeBody(input, framing: .chunked).failure == sample.error)
        #expect(sample.error.status == 400)
        for k in 0...input.count {
            #expect(decodeBody(input, framing: .chunked, cuts: [k]).failure == sample.error, "split at \(k)")
        }
    }

    @Test func chunkLineTooLong() {
        let limits = HTTP1Limits(maxChunkLineBytes: 8)
        #expect(decodeBody(bytes("1;a=bcd\r\nx\r\n0\r\n\r\n"), framing: .chunked, limits: limits).failure == nil)
        #expect(decodeBody(bytes("1;a=bcde\r\nx\r\n0\r\n\r\n"), framing: .chunked, limits: limits).failure == nil)
        #expect(decodeBody(bytes("1;a=bcdef\r\nx\r\n0\r\n\r\n"), framing: .chunked, limits: limits).failure == .chunkLineTooLong)
        // Detected without a CRLF ever arriving.
        #expect(decodeBody(bytes("1;aaaaaaaaaaaaaaaaaaaa"), framing: .chunked, limits: limits).failure == .chunkLineTooLong)
    }

    @Test func trailerLimits() {
        let limits = HTTP1Limits(maxHeadBytes: 16, maxFields: 1)
        #expect(decodeBody(bytes("0\r\nA: 1\r\nB: 2\r\n\r\n"), framing: .chunked, limits: limits).failure == .tooManyFields)
        #expect(decodeBody(bytes("0\r\nA: 0123456789abc\r\n\r\n"), framing: .chunked, limits: limits).failure == .headTooLarge)
    }

    @Test func fixedLength() throws {
        let result = try decodeBody(bytes("helloNEXT"), framing: .contentLength(5)).get()
        #expect(result.data == bytes("hello"))
        #expect(result.remaining == 4)
        for k in 0...9 {
            let split = try decodeBody(bytes("helloNEXT"), framing: .contentLength(5), cuts: [k]).get()
            #expect(split.data == bytes("hello"))
            #expect(split.remaining == 4)
        }
        #expect(try decodeBody([], framing: .contentLength(0)).get().data.isEmpty)
        #expect(try decodeBody(bytes("x"), framing: .none).get().remaining == 1)
    }

    @Test func dataEventsAreSlicesOfTheReadBuffer() throws {
        var buffer = ByteBuffer(string: "abcdef")
        var decoder = HTTP1BodyDecoder(framing: .contentLength(4), limits: HTTP1Limits())
        guard case .data(let slice) = try decoder.next(&buffer) else { Issue.record("no data"); return }
        #expect(String(buffer: slice) == "abcd")
        #expect(decoder.bytesDecoded == 4)
        #expect(!decoder.isComplete)
        guard case .end(nil) = try decoder.next(&buffer) else { Issue.record("no end"); return }
        #expect(decoder.isComplete)
        #expect(try decoder.next(&buffer) == nil)
        #expect(String(buffer: buffer) == "ef")
    }

    @Test func untilClose() throws {
        var decoder = HTTP1BodyDecoder(framing: .untilClose, limits: HTTP1Limits())
        var buffer = ByteBuffer(string: "abc")
        guard case .data(let slice) = try decoder.next(&buffer) else { Issue.record("no data"); return }
        #expect(String(buffer: slice) == "abc")
        #expect(try decoder.next(&buffer) == nil)
        guard case .end(nil) = try decoder.finishOnClose() else { Issue.record("no end"); return }
        #expect(decoder.isComplete)
        #expect(decoder.bytesDecoded == 3)
    }

    @Test func prematureEnd() {
        var chunked = HTTP1BodyDecoder(framing: .chunked, limits: HTTP1Limits())
        #expect(throws: HTTPParseError.prematureEnd) { try chunked.finishOnClose() }
        var fixed = HTTP1BodyDecoder(framing: .contentLength(3), limits: HTTP1Limits())
        var buffer = ByteBuffer(string: "ab")
        _ = try? fixed.next(&buffer)
        #expect(throws: HTTPParseError.prematureEnd) { try fixed.finishOnClose() }
        #expect(HTTPParseError.prematureEnd.status == 400)
    }

    @Test func bodyLimit() {
        let limits = HTTP1Limits(maxBodyBytes: 8)
        #expect(decodeBody(bytes("4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n"), framing: .chunked, limits: limits).failure == nil)
        // The second chunk's declared size crosses the limit: rejected before its data arrives.
        #expect(decodeBody(bytes("4\r\nabcd\r\n5\r\n"), framing: .chunked, limits: limits).failure == .bodyTooLarge)
        #expect(decodeBody(bytes("123456789"), framing: .contentLength(9), limits: limits).failure == .bodyTooLarge)
        #expect(decodeBody(bytes("123456789"), framing: .untilClose, limits: limits, close: true).failure == .bodyTooLarge)
        #expect(decodeBody(bytes("12345678"), framing: .untilClose, limits: limits, close: true).failure == nil)
    }
}

extension Result {
    /// The error, or nil on success.
    var failure: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
