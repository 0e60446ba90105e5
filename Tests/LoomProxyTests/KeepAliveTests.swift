import Glibc
import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Connection reuse on both sides, pipelining, 100-continue, bodiless responses and
    /// client half-close.
    @Suite(.serialized) struct KeepAliveTests {
        @Test func manyRequestsOverSequentialClientConnectionsShareOneBackendConnection() async throws {
            try await E2E.withBackend(configure: { $0.server.workerThreads = 1 }) { backend, proxy in
                for connection in 0..<4 {
                    let client = try RawClient(port: proxy.port)
                    for index in 0..<5 {
                        try client.send("GET /echo?c=\(connection)&i=\(index) HTTP/1.1\r\nHost: test.local\r\n\r\n")
                        let response = try client.readResponse()
                        #expect(response.status == 200)
                        #expect(try EchoedRequest(response).uri == "/echo?c=\(connection)&i=\(index)")
                    }
                }
                #expect(backend.connectionsAccepted == 1)
            }
        }

        @Test func http10ClientWithoutKeepAliveGetsResponseAndClose() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /echo HTTP/1.0\r\nHost: test.local\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("connection")?.lowercased() == "close")
                #expect(try EchoedRequest(response).uri == "/echo")
                #expect(client.readToEnd().end == .eof)
            }
        }

        /// A client whose request is its last, with nothing after it, is closed on outright,
        /// as nginx does: whatever it sends later is answered with a reset. One that sends
        /// more bytes regardless gets our FIN and a linger that swallows them, so they cannot
        /// make the kernel reset the connection under the response (RFC 9112 §9.6).
        @Test func aClientsLastRequestClosesAtOnceUnlessMoreFollows() async throws {
            try await E2E.withBackend { _, proxy in
                let last = try RawClient(port: proxy.port)
                try last.send("GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
                #expect(try last.readResponse().status == 200)
                #expect(last.readToEnd().end == .eof)
                #expect(!Self.takesBytesAfterItsEnd(last))

                let more = try RawClient(port: proxy.port)
                try more.send("GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\nGET /echo HTTP/1.1\r\n")
                #expect(try more.readResponse().status == 200)
                #expect(more.readToEnd().end == .eof)
                #expect(Self.takesBytesAfterItsEnd(more))
            }
        }

        /// Whether the server still swallows bytes after its FIN: a first send always leaves,
        /// and a reset it provokes from a closed socket fails the next.
        static func takesBytesAfterItsEnd(_ client: RawClient) -> Bool {
            guard (try? client.send("x")) != nil else { return false }
            usleep(100_000)
            return (try? client.send("x")) != nil
        }

        @Test func http10ClientWithKeepAliveKeepsConnection() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                for _ in 0..<2 {
                    try client.send("GET /echo HTTP/1.0\r\nHost: test.local\r\nConnection: keep-alive\r\n\r\n")
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    #expect(response.header("connection")?.lowercased() == "keep-alive")
                }
            }
        }

        @Test(arguments: ["GET", "POST"])
        func pooledConnectionClosedByBackendIsNotUsed(method: String) async throws {
            try await E2E.withBackend(idleClose: .milliseconds(100)) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                for index in 0..<3 {
                    let body = method == "POST" ? "payload-\(index)" : ""
                    let length = method == "POST" ? "Content-Length: \(body.utf8.count)\r\n" : ""
                    try client.send("\(method) /echo?i=\(index) HTTP/1.1\r\nHost: test.local\r\n\(length)\r\n\(body)")
                    let response = try client.readResponse()
                    #expect(response.status == 200, "request \(index): \(response.bodyText)")
                    let echoed = try EchoedRequest(response)
                    #expect(echoed.uri == "/echo?i=\(index)")
                    #expect(echoed.bodyBytes == body.utf8.count)
                    // Long enough for the backend to close its idle side and the proxy to see it.
                    try await Task.sleep(for: .milliseconds(400))
                }
                #expect(backend.connectionsAccepted == 3)
            }
        }

        @Test func pipelinedRequestsAnsweredInOrder() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(
                    "GET /echo?n=1 HTTP/1.1\r\nHost: test.local\r\n\r\n"
                        + "POST /echo?n=2 HTTP/1.1\r\nHost: test.local\r\nContent-Length: 11\r\n\r\nhello world"
                        + "GET /echo?n=3 HTTP/1.1\r\nHost: test.local\r\n\r\n")
                for n in 1...3 {
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    let echoed = try EchoedRequest(response)
                    #expect(echoed.uri == "/echo?n=\(n)")
                    #expect(echoed.bodyBytes == (n == 2 ? 11 : 0))
                }
            }
        }

        @Test func pipelinedRequestsAfterChunkedBody() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(
                    "POST /echo?n=1 HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                        + "GET /echo?n=2 HTTP/1.1\r\nHost: test.local\r\n\r\n"
                        + "GET /status?code=204 HTTP/1.1\r\nHost: test.local\r\n\r\n"
                        + "GET /echo?n=4 HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let first = try client.readResponse()
                #expect(try EchoedRequest(first).uri == "/echo?n=1")
                #expect(try EchoedRequest(first).bodyBytes == 3)
                #expect(try EchoedRequest(try client.readResponse()).uri == "/echo?n=2")
                #expect(try client.readResponse().status == 204)
                #expect(try EchoedRequest(try client.readResponse()).uri == "/echo?n=4")
            }
        }

        @Test func expectContinueInvitesTheBody() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
                let interim = try client.readResponse()
                #expect(interim.status == 100)
                try client.send("0123456789")
                let response = try client.readResponse()
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.bodyBytes == 10)
                #expect(echoed.checksum == E2E.checksum(Array("0123456789".utf8)))
                #expect(!echoed.has("expect"))
                // Same connection still usable.
                try client.send("GET /echo?after HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(try EchoedRequest(try client.readResponse()).uri == "/echo?after")
            }
        }

        @Test func headAndBodilessStatusesCarryNoBody() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("HEAD /cookies HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let head = try client.readResponse(headRequest: true)
                #expect(head.status == 200)
                #expect(head.header("content-length") == "2")
                #expect(head.header("transfer-encoding") == nil)
                for code in [204, 304] {
                    try client.send("GET /status?code=\(code) HTTP/1.1\r\nHost: test.local\r\n\r\n")
                    let response = try client.readResponse()
                    #expect(response.status == code)
                    #expect(response.header("transfer-encoding") == nil)
                    #expect(response.header("content-length") == nil)
                }
                // If any of those had carried body bytes they would show up before this response.
                try client.send("GET /echo?last HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let last = try client.readResponse()
                #expect(last.status == 200)
                #expect(try EchoedRequest(last).uri == "/echo?last")
            }
        }

        @Test func clientHalfCloseAfterGetStillGetsResponse() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /stream?bytes=100000 HTTP/1.1\r\nHost: test.local\r\n\r\n")
                client.shutdownWrite()
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == E2E.streamPattern(100_000))
                #expect(client.readToEnd().end == .eof)
            }
        }

        @Test func clientHalfCloseAfterPipelinedRequestsGetsEveryResponse() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(
                    "GET /echo?n=1 HTTP/1.1\r\nHost: test.local\r\n\r\n"
                        + "POST /echo?n=2 HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\n\r\nabc"
                        + "GET /echo?n=3 HTTP/1.1\r\nHost: test.local\r\n\r\n")
                client.shutdownWrite()
                for n in 1...3 {
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    #expect(try EchoedRequest(response).uri == "/echo?n=\(n)")
                }
                #expect(client.readToEnd().end == .eof)
            }
        }

        @Test func clientHalfCloseAfterPostBodyStillGetsResponse() async throws {
            // A fresh upstream connection each time, so the body is still buffered in the
            // proxy (not yet forwarded) when the end of input arrives.
            try await E2E.withBackend(configure: { $0.upstreams[0].pool.maxIdle = 0 }) { _, proxy in
                for _ in 0..<3 {
                    let client = try RawClient(port: proxy.port)
                    try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                    client.shutdownWrite()
                    let response = try client.readResponse()
                    #expect(response.status == 200, "\(response.bodyText)")
                    #expect(try EchoedRequest(response).bodyBytes == 5)
                }
            }
        }
    }
}

extension ProxyE2E {
    /// A reused pooled connection that the backend closes on receiving the request: safe
    /// requests are replayed once on a fresh connection, others fail with 502.
    @Suite(.serialized) struct RetryTests {
        /// Sends `first` to prime the pool, then `second`, on one client connection.
        static func exchange(_ proxy: ProxyHarness, _ second: String) throws -> RawResponse {
            let client = try RawClient(port: proxy.port)
            try client.send("GET /flaky?prime HTTP/1.1\r\nHost: test.local\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            try client.send(second)
            return try client.readResponse()
        }

        static func withFlakyBackend(_ body: (TestBackend, ProxyHarness) async throws -> Void) async throws {
            try await E2E.withBackend(configure: {
                $0.server.workerThreads = 1
                $0.server.timeouts.responseHeader = .seconds(2)
            }, body)
        }

        @Test func idempotentGetIsRetried() async throws {
            try await Self.withFlakyBackend { backend, proxy in
                let response = try Self.exchange(proxy, "GET /flaky?again HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(response.status == 200, "\(response.bodyText)")
                #expect(try EchoedRequest(response).uri == "/flaky?again")
                #expect(backend.connectionsAccepted == 2)
            }
        }

        @Test func idempotentPutWithLengthBodyIsRetried() async throws {
            try await Self.withFlakyBackend { _, proxy in
                let response = try Self.exchange(proxy, "PUT /flaky HTTP/1.1\r\nHost: test.local\r\nContent-Length: 11\r\n\r\nhello world")
                #expect(response.status == 200, "\(response.bodyText)")
                #expect(try EchoedRequest(response).bodyBytes == 11)
            }
        }

        @Test func idempotentPutWithChunkedBodyIsRetried() async throws {
            try await Self.withFlakyBackend { _, proxy in
                let response = try Self.exchange(
                    proxy, "PUT /flaky HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                #expect(response.status == 200, "\(response.bodyText)")
                let echoed = try EchoedRequest(response)
                #expect(echoed.bodyBytes == 11)
                #expect(echoed.checksum == E2E.checksum(Array("hello world".utf8)))
            }
        }

        @Test func postIsNotRetried() async throws {
            try await Self.withFlakyBackend { backend, proxy in
                let response = try Self.exchange(proxy, "POST /flaky HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\n\r\nhello")
                ErrorMappingTests.expectError(response, status: 502, code: "bad_gateway")
                #expect(backend.connectionsAccepted == 1)
            }
        }
    }
}
