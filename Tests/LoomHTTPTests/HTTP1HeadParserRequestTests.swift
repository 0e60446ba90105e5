import NIOCore
import Testing
@testable import LoomHTTP

/// Request-head parsing: valid shapes, one test per rejection rule, limits, incremental
/// feeding at every split offset, and pipelining.
@Suite struct HTTP1HeadParserRequestTests {
    /// A named input and the error it must produce.
    struct Rejection: Sendable, CustomTestStringConvertible {
        var name: String
        var input: String
        var error: HTTPParseError
        var status: Int
        var testDescription: String { name }
    }

    static let h = "Host: example.com\r\n"

    /// One entry per strictness rule (RFC 9112/9110 and the anti-smuggling list).
    static let rejections: [Rejection] = [
        // Framing / smuggling.
        .init(name: "content-length with transfer-encoding", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", error: .contentLengthWithTransferEncoding, status: 400),
        .init(name: "transfer-encoding before content-length", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", error: .contentLengthWithTransferEncoding, status: 400),
        .init(name: "differing content-length fields", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 5\r\nContent-Length: 6\r\n\r\n", error: .conflictingContentLength, status: 400),
        .init(name: "differing content-length list", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 5, 6\r\n\r\n", error: .conflictingContentLength, status: 400),
        .init(name: "content-length non-digit", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 5a\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length negative", input: "POST / HTTP/1.1\r\n\(h)Content-Length: -5\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length plus sign", input: "POST / HTTP/1.1\r\n\(h)Content-Length: +5\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length empty", input: "POST / HTTP/1.1\r\n\(h)Content-Length: \r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length empty list element", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 5,\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length hex", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 0x10\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length inner space", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 1 0\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "content-length overflow", input: "POST / HTTP/1.1\r\n\(h)Content-Length: 99999999999999999999999\r\n\r\n", error: .invalidContentLength, status: 400),
        .init(name: "unknown transfer coding", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: gzip\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "identity transfer coding", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: identity\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "chunked twice in one field", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked, chunked\r\n\r\n", error: .repeatedTransferCoding, status: 400),
        .init(name: "chunked in two fields", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", error: .repeatedTransferCoding, status: 400),
        .init(name: "gzip then chunked", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: gzip, chunked\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "chunked then second field gzip", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "chunked with parameter", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked;q=1\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "chunked with empty element", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked,\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "empty transfer-encoding", input: "POST / HTTP/1.1\r\n\(h)Transfer-Encoding:\r\n\r\n", error: .unsupportedTransferCoding, status: 400),
        .init(name: "transfer-encoding on http/1.0", input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", error: .transferEncodingInHTTP10, status: 400),
        // Line and field syntax.
        .init(name: "obs-fold", input: "GET / HTTP/1.1\r\n\(h)X-A: a\r\n b\r\n\r\n", error: .obsFold, status: 400),
        .init(name: "obs-fold with tab", input: "GET / HTTP/1.1\r\n\(h)X-A: a\r\n\tb\r\n\r\n", error: .obsFold, status: 400),
        .init(name: "whitespace after start line", input: "GET / HTTP/1.1\r\n \(h)\r\n", error: .obsFold, status: 400),
        .init(name: "space before colon", input: "GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", error: .whitespaceBeforeColon, status: 400),
        .init(name: "tab before colon", input: "GET / HTTP/1.1\r\n\(h)X-A\t: b\r\n\r\n", error: .whitespaceBeforeColon, status: 400),
        .init(name: "empty field name", input: "GET / HTTP/1.1\r\n\(h): b\r\n\r\n", error: .invalidFieldName, status: 400),
        .init(name: "non-token field name", input: "GET / HTTP/1.1\r\n\(h)X(A): b\r\n\r\n", error: .invalidFieldName, status: 400),
        .init(name: "non-ascii field name", input: "GET / HTTP/1.1\r\n\(h)X-\u{e9}: b\r\n\r\n", error: .invalidFieldName, status: 400),
        .init(name: "field without colon", input: "GET / HTTP/1.1\r\n\(h)X-A\r\n\r\n", error: .invalidFieldName, status: 400),
        .init(name: "bare cr ending request line", input: "GET / HTTP/1.1\r\(h)\r\n", error: .bareCR, status: 400),
        .init(name: "bare cr inside value", input: "GET / HTTP/1.1\r\n\(h)X-A: a\rb\r\n\r\n", error: .bareCR, status: 400),
        .init(name: "bare lf line endings", input: "GET / HTTP/1.1\n\(h)\n", error: .bareLF, status: 400),
        .init(name: "bare lf ending a field", input: "GET / HTTP/1.1\r\n\(h)X-A: a\n\r\n", error: .bareLF, status: 400),
        .init(name: "bare lf ending the head", input: "GET / HTTP/1.1\r\n\(h)\n", error: .bareLF, status: 400),
        .init(name: "bare cr before request line", input: "\rGET / HTTP/1.1\r\n\(h)\r\n", error: .bareCR, status: 400),
        .init(name: "nul in value", input: "GET / HTTP/1.1\r\n\(h)X-A: a\u{0}b\r\n\r\n", error: .controlCharacter, status: 400),
        .init(name: "control char in value", input: "GET / HTTP/1.1\r\n\(h)X-A: a\u{1}b\r\n\r\n", error: .controlCharacter, status: 400),
        .init(name: "del in value", input: "GET / HTTP/1.1\r\n\(h)X-A: a\u{7f}\r\n\r\n", error: .controlCharacter, status: 400),
        .init(name: "nul in field name", input: "GET / HTTP/1.1\r\n\(h)X\u{0}A: b\r\n\r\n", error: .controlCharacter, status: 400),
        .init(name: "nul in target", input: "GET /a\u{0}b HTTP/1.1\r\n\(h)\r\n", error: .controlCharacter, status: 400),
        .init(name: "tab in target", input: "GET /a\tb HTTP/1.1\r\n\(h)\r\n", error: .controlCharacter, status: 400),
        .init(name: "nul in method", input: "GE\u{0}T / HTTP/1.1\r\n\(h)\r\n", error: .controlCharacter, status: 400),
        // Request line.
        .init(name: "invalid method token", input: "G(T / HTTP/1.1\r\n\(h)\r\n", error: .invalidMethod, status: 400),
        .init(name: "method with non-ascii", input: "G\u{e9}T / HTTP/1.1\r\n\(h)\r\n", error: .invalidMethod, status: 400),
        .init(name: "empty method", input: " / HTTP/1.1\r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "double space", input: "GET  / HTTP/1.1\r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "missing version", input: "GET /\r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "trailing space after version", input: "GET / HTTP/1.1 \r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "empty request line", input: "\r\n\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "relative target", input: "GET a/b HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "fragment in target", input: "GET /local#x HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "backslash in target", input: "GET /x\\..\\local HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "fragment in absolute-form", input: "GET http://a/x#f HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "scheme without slashes", input: "GET http:example.com HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "absolute-form with userinfo", input: "GET http://user@example.com/ HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "absolute-form with empty authority", input: "GET http:///a HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "asterisk outside options", input: "GET * HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "authority-form outside connect", input: "GET example.com:443 HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "connect with origin-form", input: "CONNECT / HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "connect without port", input: "CONNECT example.com HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "non-ascii target", input: "GET /caf\u{e9} HTTP/1.1\r\n\(h)\r\n", error: .invalidTarget, status: 400),
        .init(name: "http/2.0", input: "GET / HTTP/2.0\r\n\(h)\r\n", error: .unsupportedVersion, status: 505),
        .init(name: "http/1.2", input: "GET / HTTP/1.2\r\n\(h)\r\n", error: .unsupportedVersion, status: 505),
        .init(name: "http/0.9", input: "GET / HTTP/0.9\r\n\(h)\r\n", error: .unsupportedVersion, status: 505),
        .init(name: "http/3", input: "GET / HTTP/3\r\n\(h)\r\n", error: .unsupportedVersion, status: 505),
        .init(name: "lower-case version", input: "GET / http/1.1\r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "garbage version", input: "GET / HTTP/1.1x\r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        .init(name: "garbage version digits", input: "GET / HTTP/11\r\n\(h)\r\n", error: .invalidRequestLine, status: 400),
        // Host and Expect.
        .init(name: "missing host on http/1.1", input: "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", error: .missingHost, status: 400),
        .init(name: "two host fields", input: "GET / HTTP/1.1\r\n\(h)Host: other.com\r\n\r\n", error: .duplicateHost, status: 400),
        .init(name: "two identical host fields", input: "GET / HTTP/1.1\r\n\(h)\(h)\r\n", error: .duplicateHost, status: 400),
        .init(name: "host with space", input: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", error: .invalidHost, status: 400),
        .init(name: "host with slash", input: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", error: .invalidHost, status: 400),
        .init(name: "host with userinfo", input: "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", error: .invalidHost, status: 400),
        .init(name: "host with comma list", input: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", error: .invalidHost, status: 400),
        .init(name: "unsupported expectation", input: "POST / HTTP/1.1\r\n\(h)Expect: something\r\nContent-Length: 1\r\n\r\n", error: .unsupportedExpectation, status: 417),
        .init(name: "expectation list with extra", input: "POST / HTTP/1.1\r\n\(h)Expect: 100-continue, x\r\nContent-Length: 1\r\n\r\n", error: .unsupportedExpectation, status: 417),
    ]

    @Test(arguments: rejections)
    func rejects(_ sample: Rejection) {
        let outcome = parseRequest(bytes(sample.input))
        #expect(outcome == .error(sample.error))
        #expect(sample.error.status == sample.status)
        #expect(!sample.error.description.isEmpty)
        #expect(sample.error.description == sample.error.description.lowercased())
    }

    /// The same result whether the bytes arrive whole, in two pieces split anywhere, or one at a time.
    @Test(arguments: rejections)
    func rejectionIsSplitInvariant(_ sample: Rejection) {
        let input = bytes(sample.input)
        for k in 0...input.count {
            #expect(parseRequest(input, cuts: [k]) == .error(sample.error), "split at \(k)")
        }
        #expect(parseRequest(input, cuts: Array(0..<input.count)) == .error(sample.error))
    }

    // MARK: valid shapes

    static let validSamples: [String] = [
        "GET / HTTP/1.1\r\n\(h)\r\n",
        "GET /a/b?x=1&y=2 HTTP/1.1\r\n\(h)Accept: */*\r\nUser-Agent: test/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\n\(h)Connection: close\r\n\r\n",
        "GET / HTTP/1.1\r\n\(h)Connection: Upgrade, , Keep-Alive\r\nConnection: X-Custom\r\n\r\n",
        "POST /upload HTTP/1.1\r\n\(h)Content-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\n\(h)Content-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: Chunked\r\n\r\n",
        "POST / HTTP/1.1\r\n\(h)Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\(h)\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "GET http://example.com:8080/a/b?x HTTP/1.1\r\nHost: ignored.example\r\n\r\n",
        "GET https://example.com HTTP/1.1\r\n\(h)\r\n",
        "GET http://example.com?q HTTP/1.1\r\n\(h)\r\n",
        "\r\nGET /after-crlf HTTP/1.1\r\n\(h)\r\n",
        "GET / HTTP/1.1\r\n\(h)X-Spaces:   padded value \t \r\nX-Empty:\r\nX-Obs: caf\u{e9}\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "PURGE /cache HTTP/1.1\r\n\(h)\r\n",
        "get /lower HTTP/1.1\r\n\(h)\r\n",
        "GET /%20sp%ce?a=b/c?d HTTP/1.1\r\nhOsT: example.com\r\n\r\n",
        "GET /many HTTP/1.1\r\n\(h)" + (1...40).map { "X-Field-\($0): value \($0)\r\n" }.joined() + "\r\n",
    ]

    @Test(arguments: validSamples)
    func validSampleIsSplitInvariant(_ sample: String) {
        let input = bytes(sample)
        let whole = parseRequest(input)
        guard case .head = whole else {
            Issue.record("\(sample.debugDescription) did not parse: \(whole)")
            return
        }
        for k in 0...input.count {
            #expect(parseRequest(input, cuts: [k]) == whole, "split at \(k)")
        }
        #expect(parseRequest(input, cuts: Array(0..<input.count)) == whole)
        // Any strict prefix is incomplete, never an error.
        for k in 0..<input.count {
            #expect(parseRequest(Array(input[0..<k])) == .incomplete, "prefix \(k)")
        }
    }

    @Test func simpleGet() throws {
        let head = try #require(requestHead("GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"))
        #expect(head.method == "GET")
        #expect(head.target == "/p?q=1")
        #expect(head.path == "/p")
        #expect(head.minorVersion == 1)
        #expect(head.host == "example.com")
        #expect(head.framing == HTTPBodyFraming.none)
        #expect(head.keepAlive)
        #expect(!head.expectsContinue)
        #expect(head.connectionTokens.isEmpty)
        #expect(head.fields == [.init(name: "Host", value: "example.com"), .init(name: "Accept", value: "*/*")])
    }

    @Test func http10DefaultsAndKeepAlive() throws {
        let plain = try #require(requestHead("GET / HTTP/1.0\r\n\r\n"))
        #expect(plain.minorVersion == 0)
        #expect(plain.host == nil)
        #expect(!plain.keepAlive)
        let kept = try #require(requestHead("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))
        #expect(kept.keepAlive)
        #expect(kept.connectionTokens.isEmpty, "keep-alive names a field dropped anyway")
    }

    @Test func connectionTokens() throws {
        let head = try #require(requestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, , Keep-Alive\r\nConnection: X-Custom\r\n\r\n"))
        #expect(head.connectionTokens == ["upgrade", "x-custom"])
        #expect(head.keepAlive)
        let closing = try #require(requestHead("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n"))
        #expect(!closing.keepAlive)
    }

    @Test func framing() throws {
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")?.framing == .contentLength(5))
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")?.framing == .contentLength(0))
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n")?.framing == .contentLength(7))
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n")?.framing == .contentLength(5))
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked \r\n\r\n")?.framing == .chunked)
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n")?.framing == .chunked)
    }

    @Test func expectContinue() throws {
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")?.expectsContinue == true)
        // RFC 9110 §10.1.1: ignored on HTTP/1.0.
        #expect(requestHead("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")?.expectsContinue == false)
    }

    @Test func targetForms() throws {
        let options = try #require(requestHead("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(options.target == "*")
        #expect(options.path == "*")
        let connect = try #require(requestHead("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"))
        #expect(connect.host == "example.com:443")
        #expect(connect.path == "")
        let absolute = try #require(requestHead("GET http://example.com:8080/a/b?x HTTP/1.1\r\nHost: ignored\r\n\r\n"))
        #expect(absolute.host == "example.com:8080")
        #expect(absolute.path == "/a/b")
        #expect(absolute.target == "http://example.com:8080/a/b?x")
        #expect(requestHead("GET http://example.com HTTP/1.1\r\nHost: a\r\n\r\n")?.path == "/")
        #expect(requestHead("GET http://example.com?q HTTP/1.1\r\nHost: a\r\n\r\n")?.path == "/")
    }

    @Test func valueTrimmingAndObsText() throws {
        let head = try #require(requestHead("GET / HTTP/1.1\r\nHost: a\r\nX-Spaces:   padded value \t \r\nX-Empty:\r\nX-Obs: caf\u{e9}\r\n\r\n"))
        #expect(head.fields[1] == .init(name: "X-Spaces", value: "padded value"))
        #expect(head.fields[2] == .init(name: "X-Empty", value: ""))
        #expect(head.fields[3] == .init(name: "X-Obs", value: "caf\u{e9}"))
    }

    @Test func emptyAndIPv6Host() {
        #expect(requestHead("GET / HTTP/1.1\r\nHost:\r\n\r\n")?.host == "")
        #expect(requestHead("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")?.host == "[::1]:8080")
    }

    @Test func leadingCRLFIsSkippedOnce() throws {
        let input = bytes("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        guard case .head(let head, let remaining) = parseRequest(input) else {
            Issue.record("no head")
            return
        }
        #expect(head.headLength == input.count - 2)
        #expect(remaining == 0)
        #expect(requestError("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == .invalidRequestLine)
    }

    // MARK: limits

    @Test func uriTooLongWhenComplete() {
        let limits = HTTP1Limits(maxURIBytes: 16)
        #expect(requestHead("GET /0123456789abcde HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits) != nil)
        #expect(requestError("GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits) == .uriTooLong)
        #expect(HTTPParseError.uriTooLong.status == 414)
    }

    @Test func uriTooLongBeforeTheLineCompletes() {
        let limits = HTTP1Limits(maxURIBytes: 16)
        // No CRLF yet: the target alone already exceeds the limit.
        #expect(parseRequest(bytes("GET /" + String(repeating: "a", count: 16)), limits: limits) == .error(.uriTooLong))
        #expect(parseRequest(bytes("GET /" + String(repeating: "a", count: 15)), limits: limits) == .incomplete)
        // Target complete and within the limit, version still arriving: not a 414.
        #expect(parseRequest(bytes("GET /" + String(repeating: "a", count: 15) + " HTTP/1."), limits: limits) == .incomplete)
        // A method token longer than the limit with no space yet.
        #expect(parseRequest(bytes(String(repeating: "G", count: 40)), limits: limits) == .error(.uriTooLong))
        // Byte by byte: the 414 still fires as soon as possible.
        let input = bytes("GET /" + String(repeating: "a", count: 100))
        #expect(parseRequest(input, cuts: Array(0..<input.count), limits: limits) == .error(.uriTooLong))
    }

    @Test func headTooLarge() {
        let limits = HTTP1Limits(maxHeadBytes: 64)
        let exact = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + String(repeating: "p", count: 28) + "\r\n\r\n"
        #expect(exact.utf8.count == 64)
        #expect(requestHead(exact, limits: limits) != nil)
        let over = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + String(repeating: "p", count: 29) + "\r\n\r\n"
        #expect(requestError(over, limits: limits) == .headTooLarge)
        // Never completing: rejected once the limit is passed, not when the peer gives up.
        let endless = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + String(repeating: "p", count: 100))
        #expect(parseRequest(endless, limits: limits) == .error(.headTooLarge))
        #expect(parseRequest(Array(endless[0..<63]), limits: limits) == .incomplete)
        #expect(HTTPParseError.headTooLarge.status == 431)
    }

    @Test func tooManyFields() {
        let limits = HTTP1Limits(maxFields: 3)
        #expect(requestHead("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits: limits) != nil)
        #expect(requestError("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits) == .tooManyFields)
        #expect(HTTPParseError.tooManyFields.status == 431)
    }

    @Test func declaredBodyTooLarge() {
        let limits = HTTP1Limits(maxBodyBytes: 10)
        #expect(requestHead("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", limits: limits) != nil)
        #expect(requestError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits) == .bodyTooLarge)
        #expect(HTTPParseError.bodyTooLarge.status == 413)
    }

    // MARK: pipelining and reuse

    @Test func pipelinedRequestsWithBody() throws {
        let first = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        let second = "GET /two HTTP/1.1\r\nHost: a\r\n\r\n"
        var buffer = ByteBuffer(string: first + second + "GET /thr")
        var parser = HTTP1HeadParser()
        let head1 = try #require(try parser.parseRequestHead(&buffer))
        #expect(head1.path == "/one")
        var decoder = HTTP1BodyDecoder(framing: head1.framing, limits: HTTP1Limits())
        guard case .data(let body) = try decoder.next(&buffer) else { Issue.record("no data"); return }
        #expect(String(buffer: body) == "hello")
        guard case .end(nil) = try decoder.next(&buffer) else { Issue.record("no end"); return }
        let head2 = try #require(try parser.parseRequestHead(&buffer))
        #expect(head2.path == "/two")
        #expect(String(buffer: head2.headers.bytes) == second)
        #expect(String(buffer: buffer) == "GET /thr")
        #expect(try parser.parseRequestHead(&buffer) == nil)
        buffer.writeString("ee HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try parser.parseRequestHead(&buffer)?.path == "/three")
        #expect(buffer.readableBytes == 0)
    }

    @Test func parserIsReusableAfterAnError() throws {
        var parser = HTTP1HeadParser()
        var bad = ByteBuffer(string: "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n")
        #expect(throws: HTTPParseError.whitespaceBeforeColon) { try parser.parseRequestHead(&bad) }
        var good = ByteBuffer(string: "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try parser.parseRequestHead(&good)?.path == "/ok")
    }

    @Test func consumesOnlyTheHeadAndCopiesItsBytes() throws {
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY")
        var parser = HTTP1HeadParser()
        let head = try #require(try parser.parseRequestHead(&buffer))
        #expect(head.headers.bytes.readerIndex == 0)
        #expect(head.headers.startLineLength == 16)
        #expect(String(buffer: head.headers.bytes) == "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(String(buffer: buffer) == "BODY")
        // The head holds none of the caller's buffer (a receive buffer is free for the next read).
        #expect(buffer.modifyIfUniquelyOwned { _ in } != nil)
    }

    private func address(_ head: HTTPRequestHead) -> (UnsafeRawPointer?, UnsafeRawPointer?) {
        (head.headers.bytes.withUnsafeReadableBytes { $0.baseAddress },
         head.headers.fields.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) })
    }

    @Test func aHeadLetGoLeavesItsStorageToTheNext() throws {
        var parser = HTTP1HeadParser()
        var buffer = ByteBuffer(string: "GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
        var first: HTTPRequestHead? = try #require(try parser.parseRequestHead(&buffer))
        let firstAddress = first.map(address)
        first = nil
        buffer = ByteBuffer(string: "GET /two HTTP/1.1\r\nHost: b\r\n\r\n")
        let second = try #require(try parser.parseRequestHead(&buffer))
        #expect(firstAddress.map { $0 == address(second) } == true)
        #expect(second.path == "/two" && second.headers.firstValue(named: "host") == "b")
    }

    @Test func aHeadStillHeldKeepsItsBytes() throws {
        var parser = HTTP1HeadParser()
        var buffer = ByteBuffer(string: "GET /one HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n")
        let first = try #require(try parser.parseRequestHead(&buffer))
        buffer = ByteBuffer(string: "GET /two HTTP/1.1\r\nHost: b\r\n\r\n")
        let second = try #require(try parser.parseRequestHead(&buffer))
        #expect(String(buffer: first.headers.bytes) == "GET /one HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n")
        #expect(first.headers.count == 2 && first.headers.firstValue(named: "x") == "1")
        #expect(second.headers.count == 1 && second.headers.firstValue(named: "host") == "b")
        #expect(address(first).0 != address(second).0 && address(first).1 != address(second).1)
    }

    @Test func aLargeHeadDoesNotStayWithTheParser() throws {
        var parser = HTTP1HeadParser()
        let filler = String(repeating: "v", count: HTTP1HeadParser.keptHeadBytes)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nX: \(filler)\r\n\r\n")
        let large = try #require(try parser.parseRequestHead(&buffer))
        // Only the head holds its bytes: nothing is kept for an idle connection.
        var bytes = large.headers.bytes
        #expect(bytes.modifyIfUniquelyOwned { _ in } == nil)  // `large` and `bytes` share it
        _ = consume large
        #expect(bytes.modifyIfUniquelyOwned { _ in } != nil)
    }

    @Test func aHeadWithManyFieldsDoesNotLeaveItsArray() throws {
        var parser = HTTP1HeadParser()
        let fields = (0..<(HTTP1HeadParser.keptFieldCapacity + 1)).map { "F\($0): v\r\n" }.joined()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n")
        let many = try #require(try parser.parseRequestHead(&buffer))
        var ranges = many.headers.fields
        _ = consume many
        // Only this copy holds the array (the parser kept none): emptied in place, not copied.
        let before = ranges.withUnsafeBufferPointer { $0.baseAddress }
        ranges.removeAll(keepingCapacity: true)
        #expect(ranges.withUnsafeBufferPointer { $0.baseAddress } == before)
    }
}
