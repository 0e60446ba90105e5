import LoomHTTP
import NIOCore
import NIOHPACK
import Testing

@testable import LoomProxy

/// The translations behind `HTTP2UpstreamStreamBridge`, without a channel: the HTTP/1.1
/// request `UpstreamConnection` writes as the frames of a stream to an HTTP/2 upstream, and
/// that upstream's frames as the HTTP/1.1 response `UpstreamConnection` parses.
@Suite struct HTTP2UpstreamTranslatorTests {
    static func request(_ writes: [String], scheme: String = "http") throws -> [HTTP2FramePart] {
        var translator = HTTP2UpstreamRequestTranslator(scheme: scheme)
        var parts: [HTTP2FramePart] = []
        for write in writes { try translator.translate(ByteBuffer(string: write), into: &parts) }
        return parts
    }

    static func head(_ fields: [(String, String)], endStream: Bool = false) -> HTTP2FramePart {
        .head(HPACKHeaders(fields), endStream: endStream)
    }

    static func data(_ text: String, endStream: Bool = false) -> HTTP2FramePart {
        .data(ByteBuffer(string: text), endStream: endStream)
    }

    @Test func theHeadBecomesPseudoFieldsWithoutConnectionSpecificOnes() throws {
        let parts = try Self.request([
            "GET /p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: 5\r\nX-Hop: 1\r\n"
                + "TE: trailers\r\nUpgrade: websocket\r\nX-Request-ID: r1\r\nAccept: */*\r\n\r\n",
        ], scheme: "https")
        #expect(parts == [
            Self.head([
                (":method", "GET"), (":scheme", "https"), (":authority", "a.test:8080"), (":path", "/p?q=1"), ("te", "trailers"),
                ("x-request-id", "r1"), ("accept", "*/*"),
            ], endStream: true),
        ])
    }

    @Test func teOtherThanTrailersIsDropped() throws {
        let parts = try Self.request(["GET / HTTP/1.1\r\nHost: a\r\nTE: gzip\r\n\r\n"])
        #expect(parts == [Self.head([(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")], endStream: true)])
    }

    @Test func aSizedBodyIsDataEndingTheStream() throws {
        let parts = try Self.request(["POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel", "lo"])
        #expect(parts == [
            Self.head([(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/u"), ("content-length", "5")]),
            Self.data("hel"), Self.data("lo", endStream: true),
        ])
    }

    @Test func aChunkedBodyLosesItsFramingAndKeepsItsTrailers() throws {
        let parts = try Self.request(["POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 6\r\n\r\n"])
        #expect(parts == [
            Self.head([(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/u")]),
            Self.data("abc"), .trailers(HPACKHeaders([("x-sum", "6")])),
        ])
    }

    @Test func bytesAfterTheRequestAreRefused() throws {
        var translator = HTTP2UpstreamRequestTranslator(scheme: "http")
        var parts: [HTTP2FramePart] = []
        #expect(throws: HTTP2UpstreamRequestTranslator.Untranslatable.self) {
            try translator.translate(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n"), into: &parts)
        }
    }

    static func response(method: String = "GET", _ frames: (inout HTTP2UpstreamResponseTranslator, inout ByteBuffer) throws -> Void) throws -> String {
        var translator = HTTP2UpstreamResponseTranslator(requestMethod: method)
        var out = ByteBuffer()
        try frames(&translator, &out)
        return String(buffer: out)
    }

    @Test func aResponseWithoutLengthIsChunkedWithItsTrailers() throws {
        let text = try Self.response { translator, out in
            try translator.head(HPACKHeaders([(":status", "200"), ("content-type", "application/grpc")]), endStream: false, into: &out)
            translator.data(ByteBuffer(string: "abc"), endStream: false, into: &out)
            translator.trailers(HPACKHeaders([("grpc-status", "0"), ("grpc-message", "")]), into: &out)
        }
        #expect(text == "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n")
    }

    @Test func aSizedResponsePassesThroughAfterItsInterimHeads() throws {
        let text = try Self.response { translator, out in
            try translator.head(HPACKHeaders([(":status", "103"), ("link", "</s.css>")]), endStream: false, into: &out)
            #expect(translator.body == .awaitingHead)
            try translator.head(HPACKHeaders([(":status", "200"), ("content-length", "2")]), endStream: false, into: &out)
            translator.data(ByteBuffer(string: "ok"), endStream: true, into: &out)
        }
        #expect(text == "HTTP/1.1 103 \r\nlink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    }

    @Test func headersEndingTheStreamAreAnEmptyBody() throws {
        // gRPC's trailers-only response: its status in the only HEADERS frame.
        let trailersOnly = try Self.response { translator, out in
            try translator.head(HPACKHeaders([(":status", "200"), ("grpc-status", "5")]), endStream: true, into: &out)
            #expect(translator.body == .ended)
        }
        #expect(trailersOnly == "HTTP/1.1 200 OK\r\ngrpc-status: 5\r\ncontent-length: 0\r\n\r\n")
        // 204 and a response to HEAD have no body and get no length.
        let noContent = try Self.response { translator, out in
            try translator.head(HPACKHeaders([(":status", "204")]), endStream: true, into: &out)
        }
        #expect(noContent == "HTTP/1.1 204 No Content\r\n\r\n")
        let head = try Self.response(method: "HEAD") { translator, out in
            try translator.head(HPACKHeaders([(":status", "200"), ("content-length", "9")]), endStream: false, into: &out)
            translator.data(ByteBuffer(), endStream: true, into: &out)
        }
        #expect(head == "HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n")
    }

    @Test(arguments: [[(":status", "2000")], [("x", "y")], [(":status", "101")], [(":status", "abc")]])
    func headsHTTP11CannotCarryAreRefused(_ fields: [(String, String)]) throws {
        var translator = HTTP2UpstreamResponseTranslator(requestMethod: "GET")
        var out = ByteBuffer()
        #expect(throws: HTTP2UpstreamResponseTranslator.Untranslatable.self) {
            try translator.head(HPACKHeaders(fields), endStream: false, into: &out)
        }
    }

    /// What comes out parses: the HTTP/1.1 parser `UpstreamConnection` uses agrees on the
    /// framing the translator chose.
    @Test func theTranslatedResponseParses() throws {
        var buffer = ByteBuffer(string: try Self.response { translator, out in
            try translator.head(HPACKHeaders([(":status", "200")]), endStream: false, into: &out)
            translator.data(ByteBuffer(string: "x"), endStream: true, into: &out)
        })
        var parser = HTTP1HeadParser()
        let head = try #require(try parser.parseResponseHead(&buffer, requestMethod: "GET"))
        #expect(head.status == 200 && head.framing == .chunked && head.keepAlive)
        var decoder = HTTP1BodyDecoder(framing: head.framing)
        guard case .data(let data)? = try decoder.next(&buffer) else { Issue.record("no data"); return }
        #expect(String(buffer: data) == "x")
        guard case .end? = try decoder.next(&buffer) else { Issue.record("no end"); return }
    }
}

/// gRPC's fields and statuses (`GRPC`).
@Suite struct GRPCTests {
    static func head(contentType: String?) -> HTTPRequestHead {
        var text = "POST /s/M HTTP/1.1\r\nHost: a\r\n"
        if let contentType { text += "Content-Type: \(contentType)\r\n" }
        var buffer = ByteBuffer(string: text + "\r\n")
        var parser = HTTP1HeadParser()
        return try! parser.parseRequestHead(&buffer)!
    }

    @Test(arguments: [
        ("application/grpc", true), ("application/grpc+proto", true), ("Application/GRPC; charset=x", true),
        ("application/grpc-web", false), ("application/json", false), ("application/grp", false), (nil, false),
    ] as [(String?, Bool)])
    func callsAreKnownByTheirContentType(_ type: String?, _ isCall: Bool) {
        #expect(GRPC.isCall(Self.head(contentType: type)) == isCall)
    }

    @Test func timeoutsParseByTheProtocolsGrammar() {
        #expect(GRPC.timeout("200m") == .milliseconds(200))
        #expect(GRPC.timeout("1H") == .seconds(3600) && GRPC.timeout("2M") == .seconds(120) && GRPC.timeout("3S") == .seconds(3))
        #expect(GRPC.timeout("99999999u") == .microseconds(99_999_999) && GRPC.timeout("5n") == .nanoseconds(5))
        for bad in ["", "m", "123456789m", "1.5S", "-1S", "10", "10s", "1 S"] { #expect(GRPC.timeout(bad) == nil, "\(bad)") }
    }

    @Test func failuresMapToStatuses() {
        #expect(GRPC.status(for: GatewayError(.connectFailed("refused"))) == .unavailable)
        #expect(GRPC.status(for: GatewayError(.routeNotFound)) == .unimplemented)
        #expect(GRPC.status(for: GatewayError(.deadlineExceeded)) == .deadlineExceeded)
        #expect(GRPC.status(for: GatewayError(.responseHeaderTimeout)) == .deadlineExceeded)
        #expect(GRPC.status(for: GatewayError(.noEndpointAvailable(retryAfter: nil))) == .unavailable)
        #expect(GRPC.status(httpStatus: 401) == .unauthenticated && GRPC.status(httpStatus: 403) == .permissionDenied)
        #expect(GRPC.status(httpStatus: 429) == .unavailable && GRPC.status(httpStatus: 400) == .internal && GRPC.status(httpStatus: 418) == .unknown)
    }

    @Test func messagesArePercentEncoded() {
        #expect(GRPC.percentEncoded("no route: /a b") == "no route: /a b")
        #expect(GRPC.percentEncoded("50% ü\n") == "50%25 %C3%BC%0A")
    }

    @Test func receivedMessagesArePercentDecodedLeavingMalformedEscapes() {
        #expect(GRPC.percentDecoded("50%25 %C3%BC%0A") == "50% ü\n")
        #expect(GRPC.percentDecoded(GRPC.percentEncoded("nope: ü%")) == "nope: ü%")
        // Not two hex digits (a sign is not one): kept as sent.
        #expect(GRPC.percentDecoded("100% %+f %4 %") == "100% %+f %4 %")
        // Bytes that are not UTF-8 become U+FFFD rather than failing.
        #expect(GRPC.percentDecoded("%FF") == "\u{FFFD}")
    }

    @Test func aFailureAnswersACallTrailersOnly() {
        var out = ByteBuffer()
        ErrorResponse.write(
            GatewayError(.routeNotFound), requestID: "r1", requestIDHeader: "X-Request-ID", date: "D", close: false, headRequest: false, grpc: true,
            into: &out)
        let text = String(buffer: out)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: application/grpc\r\ngrpc-status: 12\r\ngrpc-message: "), "\(text)")
        #expect(text.hasSuffix("X-Request-ID: r1\r\nContent-Length: 0\r\n\r\n"), "\(text)")
    }
}

/// gRPC's length-prefixed messages, as loom reads them for plugins' calls.
@Suite struct GRPCMessageReaderTests {
    @Test func messagesSplitAnywhereComeOutWhole() {
        var wire = GRPCMessageReader.frame(Array("hello".utf8))
        wire.writeImmutableBuffer(GRPCMessageReader.frame([]))
        wire.writeImmutableBuffer(GRPCMessageReader.frame(Array("second".utf8)))
        #expect(wire.readableBytes == 5 + 5 + 5 + 0 + 5 + 6)
        // Every way of cutting the bytes in two gives the same three messages.
        for cut in 0...wire.readableBytes {
            var reader = GRPCMessageReader(limit: 100)
            let first = wire.getSlice(at: 0, length: cut)!
            let second = wire.getSlice(at: cut, length: wire.readableBytes - cut)!
            let reads = [reader.read(first), reader.read(second)]
            #expect(reads.flatMap(\.messages) == [Array("hello".utf8), [], Array("second".utf8)], "cut at \(cut)")
            #expect(reads.allSatisfy { $0.failure == nil })
            #expect(reader.isEmpty)
        }
    }

    @Test func aPartialMessageIsPending() {
        var reader = GRPCMessageReader(limit: 100)
        let wire = GRPCMessageReader.frame(Array("hello".utf8))
        #expect(reader.read(wire.getSlice(at: 0, length: 7)!) == GRPCMessageReader.Read())
        #expect(!reader.isEmpty)
    }

    @Test func compressedOrOversizedMessagesAreRefused() {
        var reader = GRPCMessageReader(limit: 4)
        #expect(reader.read(GRPCMessageReader.frame(Array("hello".utf8))) == .init(failure: .tooLarge(5)))
        let compressed = ByteBuffer(bytes: [1, 0, 0, 0, 1, 0x41])
        var other = GRPCMessageReader(limit: 4)
        #expect(other.read(compressed) == .init(failure: .compressed))
    }

    @Test func messagesBeforeABadFrameInTheSameReadAreKept() {
        var wire = GRPCMessageReader.frame(Array("ok".utf8))
        wire.writeBytes([1, 0, 0, 0, 1, 0x41])
        var reader = GRPCMessageReader(limit: 4)
        #expect(reader.read(wire) == .init(messages: [Array("ok".utf8)], failure: .compressed))
    }
}
