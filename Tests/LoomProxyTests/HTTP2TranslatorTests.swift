import LoomHTTP
import NIOCore
import NIOHPACK
import Testing

@testable import LoomProxy

/// HTTP/2 streams written as HTTP/1.1 requests, and HTTP/1.1 responses read back as
/// frames: the two translations behind `HTTP2StreamBridge`, without a channel.
@Suite struct HTTP2TranslatorTests {
    static func request(_ fields: [(String, String)], endStream: Bool) throws -> (HTTP2RequestTranslator, String) {
        var translator = HTTP2RequestTranslator()
        var out = ByteBuffer()
        try translator.head(HPACKHeaders(fields), endStream: endStream, into: &out)
        return (translator, String(buffer: out))
    }

    static let get = [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", "/p?q=1")]

    @Test func aRequestWithoutBodyHasNoFraming() throws {
        let (translator, text) = try Self.request(Self.get + [("user-agent", "t"), ("accept", "*/*")], endStream: true)
        #expect(text == "GET /p?q=1 HTTP/1.1\r\nhost: a.test\r\nuser-agent: t\r\naccept: */*\r\n\r\n")
        #expect(translator.method == "GET" && translator.body == .none)
    }

    @Test func cookiesAreJoinedAndTheSameHostIsSentOnce() throws {
        let (_, text) = try Self.request(Self.get + [("host", "a.test"), ("cookie", "a=1"), ("x", "y"), ("cookie", "b=2")], endStream: true)
        #expect(text == "GET /p?q=1 HTTP/1.1\r\nhost: a.test\r\nx: y\r\ncookie: a=1; b=2\r\n\r\n")
    }

    @Test func aDifferentHostIsKeptForTheHeadParserToRefuse() throws {
        let (_, text) = try Self.request(Self.get + [("host", "b.test")], endStream: true)
        #expect(text.contains("host: a.test\r\nhost: b.test\r\n"))
    }

    @Test func aSizedBodyPassesThrough() throws {
        var (translator, text) = try Self.request(
            [(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/u"), ("content-length", "5")], endStream: false)
        #expect(text == "POST /u HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\n")
        var out = ByteBuffer()
        translator.data(ByteBuffer(string: "hel"), endStream: false, into: &out)
        translator.data(ByteBuffer(string: "lo"), endStream: true, into: &out)
        #expect(String(buffer: out) == "hello" && translator.body == .ended)
    }

    @Test func aBodyOfUnknownLengthIsChunkedWithItsTrailers() throws {
        var (translator, text) = try Self.request([(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/u")], endStream: false)
        #expect(text.hasSuffix("transfer-encoding: chunked\r\n\r\n"))
        var out = ByteBuffer()
        translator.data(ByteBuffer(string: String(repeating: "x", count: 20)), endStream: false, into: &out)
        translator.data(ByteBuffer(), endStream: false, into: &out)
        translator.trailers(HPACKHeaders([("grpc-status", "0")]), into: &out)
        #expect(String(buffer: out) == "14\r\n\(String(repeating: "x", count: 20))\r\n0\r\ngrpc-status: 0\r\n\r\n")

        var (other, _) = try Self.request([(":method", "PUT"), (":scheme", "http"), (":authority", "a"), (":path", "/u")], endStream: false)
        out.clear()
        other.data(ByteBuffer(string: "ab"), endStream: true, into: &out)
        #expect(String(buffer: out) == "2\r\nab\r\n0\r\n\r\n" && other.body == .ended)
    }

    @Test func whatHTTP11MustNotSeeIsRefused() throws {
        for fields in [
            // Extended CONNECT: only for a WebSocket, and not ending the stream at once.
            [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "a"), (":path", "/ws")],
            [(":method", "CONNECT"), (":protocol", "connect-udp"), (":scheme", "https"), (":authority", "a"), (":path", "/ws")],
            // An absolute URI in :path would carry its own authority past :authority.
            [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "http://evil.test/")],
            [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "*")],
        ] {
            #expect(throws: HTTP2RequestTranslator.Malformed.self, "\(fields)") { try Self.request(fields, endStream: true) }
        }
        let (_, options) = try Self.request([(":method", "OPTIONS"), (":scheme", "http"), (":authority", "a"), (":path", "*")], endStream: true)
        #expect(options.hasPrefix("OPTIONS * HTTP/1.1\r\n"))
    }

    /// RFC 8441: an extended CONNECT for `websocket` is the HTTP/1.1 handshake (with a key
    /// loom makes), its DATA the tunnel's bytes as they are.
    @Test func aWebSocketStreamIsTheHTTP11Handshake() throws {
        var translator = HTTP2RequestTranslator()
        var out = ByteBuffer()
        try translator.head(HPACKHeaders([
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":authority", "a"), (":path", "/chat?x=1"),
            ("sec-websocket-version", "13"), ("sec-websocket-key", "client's"), ("sec-websocket-protocol", "chat"),
        ]), endStream: false, webSocketKey: "dGhlIHNhbXBsZSBub25jZQ==", into: &out)
        #expect(String(buffer: out) == "GET /chat?x=1 HTTP/1.1\r\nhost: a\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: chat\r\n"
            + "connection: upgrade, close\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        #expect(translator.isWebSocket && translator.method == "GET" && translator.body == .tunnel)
        var buffer = out
        var parser = HTTP1HeadParser()
        let head = try #require(try parser.parseRequestHead(&buffer))
        #expect(WebSocketUpgrade.key(of: head) == "dGhlIHNhbXBsZSBub25jZQ==" && !head.keepAlive)
        out.clear()
        translator.data(ByteBuffer(string: "\u{81}\u{02}hi"), endStream: false, into: &out)
        translator.data(ByteBuffer(string: "!"), endStream: true, into: &out)
        #expect(String(buffer: out) == "\u{81}\u{02}hi!" && translator.body == .ended)
    }

    @Test func anAcceptedWebSocketIs200ThenItsBytes() throws {
        var translator = HTTP2ResponseTranslator(requestMethod: "GET", webSocket: true)
        var parts: [HTTP2FramePart] = []
        try translator.translate(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\nfirst"), into: &parts)
        try translator.translate(ByteBuffer(string: "HTTP/1.1 200 not a head"), into: &parts)
        #expect(parts == [Self.head([(":status", "200"), ("sec-websocket-protocol", "chat")]), Self.data("first"), Self.data("HTTP/1.1 200 not a head")])
        #expect(translator.endsAtClose && translator.finishAtClose() == Self.data("", endStream: true))
        // Refused: an ordinary response.
        var refused = HTTP2ResponseTranslator(requestMethod: "GET", webSocket: true)
        parts.removeAll()
        try refused.translate(ByteBuffer(string: "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"), into: &parts)
        #expect(parts == [Self.head([(":status", "403"), ("content-length", "2")]), Self.data("no", endStream: true)])
        // A 2xx would tell the client its WebSocket is open: the stream is reset instead.
        var served = HTTP2ResponseTranslator(requestMethod: "GET", webSocket: true)
        #expect(throws: HTTP2ResponseTranslator.Untranslatable.self) {
            try served.translate(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhtml"), into: &parts)
        }
    }

    // MARK: Responses

    static func response(_ writes: [String], method: String = "GET") throws -> [HTTP2ResponseTranslator.Part] {
        var translator = HTTP2ResponseTranslator(requestMethod: method)
        var parts: [HTTP2ResponseTranslator.Part] = []
        for write in writes { try translator.translate(ByteBuffer(string: write), into: &parts) }
        #expect(translator.finished)
        return parts
    }

    static func head(_ fields: [(String, String)], endStream: Bool = false) -> HTTP2ResponseTranslator.Part {
        .head(HPACKHeaders(fields), endStream: endStream)
    }

    static func data(_ text: String, endStream: Bool = false) -> HTTP2ResponseTranslator.Part {
        .data(ByteBuffer(string: text), endStream: endStream)
    }

    @Test func aSmallResponseIsOneHeadersAndOneDataFrame() throws {
        let parts = try Self.response(["HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-A: b\r\n\r\nhello"])
        #expect(parts == [Self.head([(":status", "200"), ("content-length", "5"), ("x-a", "b")]), Self.data("hello", endStream: true)])
    }

    @Test func headsAndChunksSplitAcrossWritesAndTrailers() throws {
        let parts = try Self.response([
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\n\r\n3\r\nab", "c\r\n0\r\nGrpc-Status: 0\r\n\r\n",
        ])
        #expect(parts == [
            Self.head([(":status", "100")]), Self.head([(":status", "200")]), Self.data("ab"), Self.data("c"),
            .trailers(HPACKHeaders([("grpc-status", "0")])),
        ])
    }

    @Test func bodilessResponsesEndWithTheirHead() throws {
        #expect(try Self.response(["HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"], method: "HEAD") == [
            Self.head([(":status", "200"), ("content-length", "9")], endStream: true),
        ])
        #expect(try Self.response(["HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"]) == [Self.head([(":status", "204")], endStream: true)])
        // An empty body is the head's END_STREAM; its `content-length: 0` says nothing more.
        #expect(try Self.response(["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) == [Self.head([(":status", "200")], endStream: true)])
    }

    @Test func aBodyDelimitedByTheCloseEndsAtTheClose() throws {
        var translator = HTTP2ResponseTranslator(requestMethod: "GET")
        var parts: [HTTP2ResponseTranslator.Part] = []
        try translator.translate(ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nsome"), into: &parts)
        #expect(parts == [Self.head([(":status", "200")]), Self.data("some")] && translator.endsAtClose)
        #expect(translator.finishAtClose() == Self.data("", endStream: true))
        #expect(translator.finished && translator.finishAtClose() == nil)
    }

    @Test func aCutResponseDoesNotEndTheStream() throws {
        var translator = HTTP2ResponseTranslator(requestMethod: "GET")
        var parts: [HTTP2ResponseTranslator.Part] = []
        try translator.translate(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), into: &parts)
        #expect(translator.finishAtClose() == nil && !translator.finished)
    }

    @Test func whatHTTP2CannotCarryIsRefused() {
        var translator = HTTP2ResponseTranslator(requestMethod: "GET")
        var parts: [HTTP2ResponseTranslator.Part] = []
        #expect(throws: HTTP2ResponseTranslator.Untranslatable.self) {
            try translator.translate(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), into: &parts)
        }
        var done = HTTP2ResponseTranslator(requestMethod: "GET")
        #expect(throws: HTTP2ResponseTranslator.Untranslatable.self) {
            try done.translate(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"), into: &parts)
        }
    }

    @Test func thePrefaceIsRecognisedByteByByte() {
        #expect(ProtocolSelector.matchPreface(ByteBuffer(string: "PRI * HT")) == nil)
        #expect(ProtocolSelector.matchPreface(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0")) == true)
        #expect(ProtocolSelector.matchPreface(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == false)
        #expect(ProtocolSelector.matchPreface(ByteBuffer(string: "P")) == nil)
        #expect(ProtocolSelector.matchPreface(ByteBuffer(string: "PUT")) == false)
    }
}

/// `Upgrade: h2c`: which first requests upgrade, and the stream-1 frame spliced after the
/// client's preface and SETTINGS.
@Suite struct H2CUpgradeTests {
    static func head(_ text: String) throws -> HTTPRequestHead {
        var parser = HTTP1HeadParser()
        var bytes = ByteBuffer(string: text)
        return try #require(try parser.parseRequestHead(&bytes))
    }

    static let upgrade = "GET /p?q=1 HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nAccept: */*\r\n"

    @Test func aWellFormedUpgradeBecomesStreamOne() throws {
        let fields = try #require(H2CUpgrade.fields(of: try Self.head(Self.upgrade + "\r\n")))
        #expect(fields.map { "\($0.name): \($0.value)" } == [":method: GET", ":scheme: http", ":authority: a.test", ":path: /p?q=1", "accept: */*"])
        var frame = try #require(H2CUpgrade.headersFrame(fields))
        // length (24 bits), HEADERS, END_STREAM|END_HEADERS, stream 1, then a block that
        // decodes to the same fields, none of them indexed.
        let length = Int(frame.readInteger(as: UInt16.self)!) << 8 | Int(frame.readInteger(as: UInt8.self)!)
        #expect(frame.readInteger(as: UInt8.self) == 1 && frame.readInteger(as: UInt8.self) == 5 && frame.readInteger(as: UInt32.self) == 1)
        #expect(length == frame.readableBytes)
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        #expect(try decoder.decodeHeaders(from: &frame) == fields)
        #expect(fields.allSatisfy { $0.indexable == .nonIndexable }, "the block adds nothing to the server's HPACK table")
    }

    @Test(arguments: [
        "POST /p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: 1\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAAB=\r\n\r\n",
        "GET /p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
        "GET /p HTTP/1.0\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
    ])
    func otherRequestsStayHTTP11(_ text: String) throws {
        #expect(H2CUpgrade.fields(of: try Self.head(text)) == nil)
    }

    @Test func theSpliceComesAfterThePrefaceAndTheFirstSettings() {
        let preface = String(decoding: ProtocolSelector.preface, as: UTF8.self)
        #expect(H2CUpgradeSplicer.splice(ByteBuffer(string: "PRI * HTTP")) == .needMore)
        var bytes = ByteBuffer(string: preface)
        bytes.writeBytes([0, 0, 6, 4, 0, 0, 0, 0, 0])  // SETTINGS, 6 bytes of payload to come
        #expect(H2CUpgradeSplicer.splice(bytes) == .needMore)
        bytes.writeBytes([0, 3, 0, 0, 0, 100, 0, 0, 0, 4, 1])  // the payload, then the next frame begins
        #expect(H2CUpgradeSplicer.splice(bytes) == .after(ProtocolSelector.preface.count + 15))
        var ping = ByteBuffer(string: preface)
        ping.writeBytes([0, 0, 8, 6, 0, 0, 0, 0, 0])
        #expect(H2CUpgradeSplicer.splice(ping) == .unexpected)
        #expect(H2CUpgradeSplicer.splice(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .unexpected)
    }
}
