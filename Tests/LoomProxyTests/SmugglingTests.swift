import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Requests a strict proxy must refuse, each over a raw socket: the refusal status, the
    /// connection closed (the position of the next request is unknown), and the request
    /// smuggled behind it never reaching the backend.
    @Suite(.serialized) struct SmugglingTests {
        /// One malformed request. `forwardsHead`: the head itself is valid, the body is not, so
        /// the head may reach the backend before the error is found.
        struct Case: Sendable, CustomTestStringConvertible {
            var name: String
            var raw: String
            var status: Int = 400
            var forwardsHead = false

            var testDescription: String { name }
        }

        static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n"

        static let cases: [Case] = [
            Case(name: "CL and TE together",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Case(name: "TE and CL together",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n"),
            Case(name: "two differing CL",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            Case(name: "CL list differing",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5, 6\r\n\r\nhello!"),
            Case(name: "CL +5", raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: +5\r\n\r\nhello"),
            Case(name: "CL 5a", raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5a\r\n\r\nhello"),
            Case(name: "CL -1", raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: -1\r\n\r\n"),
            Case(name: "CL empty", raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: \r\n\r\n"),
            Case(name: "CL hex", raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 0x5\r\n\r\nhello"),
            Case(name: "TE gzip, chunked",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
            Case(name: "TE chunked, chunked",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
            Case(name: "TE twice",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Case(name: "TE unknown coding",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
            Case(name: "TE chunked not last",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
            Case(name: "TE in HTTP/1.0",
                 raw: "POST /echo HTTP/1.0\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Case(name: "chunk size not hex",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                 forwardsHead: true),
            Case(name: "chunk size with 0x",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                 forwardsHead: true),
            Case(name: "chunk size overflow",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
                 forwardsHead: true),
            Case(name: "chunk data without CRLF",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
                 forwardsHead: true),
            Case(name: "obs-fold", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nX-A: 1\r\n  folded\r\n\r\n"),
            Case(name: "whitespace before colon", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nX-A : 1\r\n\r\n"),
            Case(name: "whitespace before colon on CL",
                 raw: "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length : 5\r\n\r\nhello"),
            Case(name: "bare CR in value", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nX-A: 1\r2\r\n\r\n"),
            Case(name: "bare LF line endings", raw: "GET /echo HTTP/1.1\nHost: test.local\n\n"),
            Case(name: "bare LF after a field", raw: "GET /echo HTTP/1.1\r\nHost: test.local\nX-A: 1\r\n\r\n"),
            Case(name: "NUL in request line", raw: "GET /ec\u{0}ho HTTP/1.1\r\nHost: test.local\r\n\r\n"),
            Case(name: "control byte in request line", raw: "GET /ec\u{1}ho HTTP/1.1\r\nHost: test.local\r\n\r\n"),
            Case(name: "NUL in header value", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nX-A: a\u{0}b\r\n\r\n"),
            Case(name: "control byte in header value", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nX-A: a\u{7}b\r\n\r\n"),
            Case(name: "DEL in header value", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nX-A: a\u{7f}b\r\n\r\n"),
            Case(name: "missing Host on 1.1", raw: "GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n"),
            Case(name: "two Host fields", raw: "GET /echo HTTP/1.1\r\nHost: test.local\r\nHost: other.local\r\n\r\n"),
            Case(name: "HTTP/2.0", raw: "GET /echo HTTP/2.0\r\nHost: test.local\r\n\r\n", status: 505),
            Case(name: "HTTP/3.0", raw: "GET /echo HTTP/3.0\r\nHost: test.local\r\n\r\n", status: 505),
            Case(name: "garbage version", raw: "GET /echo HTTX/1.1\r\nHost: test.local\r\n\r\n"),
            Case(name: "garbage version digits", raw: "GET /echo HTTP/1.x\r\nHost: test.local\r\n\r\n"),
            Case(name: "extra space in request line", raw: "GET  /echo HTTP/1.1\r\nHost: test.local\r\n\r\n"),
        ]

        @Test(arguments: cases)
        func refused(_ testCase: Case) async throws {
            try await E2E.withBackend { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(testCase.raw + Self.smuggled)
                let response = try client.readResponse()
                #expect(response.status == testCase.status, "\(response.bodyText)")
                #expect(response.header("connection")?.lowercased() == "close")
                #expect(E2E.jsonRequestID(response) == response.header("x-request-id"))
                #expect(client.waitForClose(), "connection left open")
                let seen = backend.requestURIs.withLockedValue { $0 }
                #expect(!seen.contains("/smuggled"))
                if !testCase.forwardsHead {
                    #expect(seen.isEmpty, "backend saw \(seen)")
                }
            }
        }

        @Test func validRequestWithSameShapeIsAccepted() async throws {
            // Control for the cases above: the same framing done right passes, and a
            // pipelined request after it is answered as its own request.
            try await E2E.withBackend { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(
                    "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5, 5\r\n\r\nhello"
                        + "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                        + Self.smuggled)
                let first = try client.readResponse()
                #expect(first.status == 200, "\(first.bodyText)")
                // The list collapses to one value upstream, so no recipient can read it differently.
                #expect(try EchoedRequest(first).values("content-length") == ["5"])
                #expect(try EchoedRequest(first).bodyBytes == 5)
                #expect(try EchoedRequest(try client.readResponse()).bodyBytes == 5)
                #expect(try client.readResponse().status == 200)
                #expect(backend.requestURIs.withLockedValue { $0 } == ["/echo", "/echo", "/smuggled"])
            }
        }
    }
}
