import NIOCore
import Testing
@testable import LoomHTTP

/// Response-head parsing: status lines, framing per RFC 9112 §6.3, keep-alive, and the same
/// anti-smuggling rules as requests (the proxy answers these errors with 502).
@Suite struct HTTP1HeadParserResponseTests {
    /// A named response input and the error it must produce.
    struct Rejection: Sendable, CustomTestStringConvertible {
        var name: String
        var input: String
        var error: HTTPParseError
        var testDescription: String { name }
    }

    static let rejections: [Rejection] = [
        .init(name: "two-digit status", input: "HTTP/1.1 20 OK\r\n\r\n", error: .invalidStatusLine),
        .init(name: "four-digit status", input: "HTTP/1.1 2000 OK\r\n\r\n", error: .invalidStatusLine),
        .init(name: "status below 100", input: "HTTP/1.1 099 Low\r\n\r\n", error: .invalidStatusLine),
        .init(name: "status above 599", input: "HTTP/1.1 600 High\r\n\r\n", error: .invalidStatusLine),
        .init(name: "non-digit status", input: "HTTP/1.1 2x0 OK\r\n\r\n", error: .invalidStatusLine),
        .init(name: "missing space after version", input: "HTTP/1.1200 OK\r\n\r\n", error: .invalidStatusLine),
        .init(name: "garbage version", input: "HTTX/1.1 200 OK\r\n\r\n", error: .invalidStatusLine),
        .init(name: "http/2 version", input: "HTTP/2.0 200 OK\r\n\r\n", error: .unsupportedVersion),
        .init(name: "control char in reason", input: "HTTP/1.1 200 O\u{1}K\r\n\r\n", error: .controlCharacter),
        .init(name: "content-length with transfer-encoding", input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", error: .contentLengthWithTransferEncoding),
        .init(name: "conflicting content-length", input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n", error: .conflictingContentLength),
        .init(name: "invalid content-length", input: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", error: .invalidContentLength),
        .init(name: "chunked twice", input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", error: .repeatedTransferCoding),
        .init(name: "gzip then chunked", input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", error: .unsupportedTransferCoding),
        .init(name: "chunked not last", input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", error: .unsupportedTransferCoding),
        .init(name: "unknown coding only", input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", error: .unsupportedTransferCoding),
        .init(name: "transfer-encoding on http/1.0", input: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", error: .transferEncodingInHTTP10),
        .init(name: "obs-fold", input: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", error: .obsFold),
        .init(name: "bare lf", input: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", error: .bareLF),
        .init(name: "bare cr", input: "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", error: .bareCR),
        .init(name: "space before colon", input: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", error: .whitespaceBeforeColon),
        .init(name: "leading crlf is not skipped for responses", input: "\r\nHTTP/1.1 200 OK\r\n\r\n", error: .invalidStatusLine),
    ]

    @Test(arguments: rejections)
    func rejects(_ sample: Rejection) {
        let input = bytes(sample.input)
        #expect(parseResponse(input) == .error(sample.error))
        for k in 0...input.count {
            #expect(parseResponse(input, cuts: [k]) == .error(sample.error), "split at \(k)")
        }
    }

    /// Framing and keep-alive decisions: (request method, response, framing, keepAlive).
    static let framingCases: [(String, String, HTTPBodyFraming, Bool)] = [
        ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", .contentLength(5), true),
        ("GET", "HTTP/1.1 200 OK\r\n\r\n", .untilClose, false),
        ("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .chunked, true),
        ("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", .none, true),
        ("HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .none, true),
        ("GET", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", .none, true),
        ("GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", .none, true),
        ("GET", "HTTP/1.1 100 Continue\r\n\r\n", .none, true),
        ("GET", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", .none, true),
        ("CONNECT", "HTTP/1.1 200 Connection Established\r\n\r\n", .none, true),
        ("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", .contentLength(5), false),
        ("GET", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", .contentLength(5), false),
        ("GET", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", .contentLength(5), true),
        ("GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", .untilClose, false),
        ("GET", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", .contentLength(0), true),
        ("GET", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", .contentLength(0), true),
    ]

    @Test(arguments: framingCases)
    func framingAndKeepAlive(_ method: String, _ response: String, _ framing: HTTPBodyFraming, _ keepAlive: Bool) {
        let input = bytes(response)
        let whole = parseResponse(input, method: method)
        guard case .head(let head, remaining: 0) = whole else {
            Issue.record("no head: \(whole)")
            return
        }
        #expect(head.framing == framing)
        #expect(head.keepAlive == keepAlive)
        for k in 0...input.count {
            #expect(parseResponse(input, method: method, cuts: [k]) == whole, "split at \(k)")
        }
    }

    @Test func statusLineParts() throws {
        var buffer = ByteBuffer(string: "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close, X-Hop\r\n\r\nrest")
        var parser = HTTP1HeadParser()
        let head = try #require(try parser.parseResponseHead(&buffer, requestMethod: "GET"))
        #expect(head.status == 503)
        #expect(head.reason == "Service Unavailable")
        #expect(head.minorVersion == 1)
        #expect(head.connectionTokens == ["close", "x-hop"])
        #expect(head.headers.firstValue(named: "retry-after") == "5")
        #expect(String(buffer: buffer) == "rest")
        #expect(responseError("HTTP/1.1 200\r\n\r\n") == nil)
    }

    @Test func interimResponsesAreReturnedOneByOne() throws {
        var buffer = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        var parser = HTTP1HeadParser()
        var statuses: [Int] = []
        while let head = try parser.parseResponseHead(&buffer, requestMethod: "POST") { statuses.append(head.status) }
        #expect(statuses == [100, 103, 200])
    }

    @Test func responseBodyLimit() {
        let limits = HTTP1Limits(maxBodyBytes: 4)
        #expect(parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), limits: limits) == .error(.bodyTooLarge))
        // A HEAD response's Content-Length describes no bytes on the wire.
        if case .head = parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), method: "HEAD", limits: limits) {} else {
            Issue.record("HEAD response rejected")
        }
    }
}
