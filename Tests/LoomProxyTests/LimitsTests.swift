import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// `server.limits`: each excess gets its status and a closed connection, and nothing (or,
    /// for a chunked body, no complete request) reaches the backend.
    @Suite(.serialized) struct LimitsTests {
        static func withLimits(_ body: (TestBackend, ProxyHarness) async throws -> Void) async throws {
            try await E2E.withBackend(configure: {
                $0.server.limits = Limits(maxHeaderBytes: 1024, maxURIBytes: 100, maxBodyBytes: 1000)
            }, body)
        }

        static func expectRefused(_ client: RawClient, status: Int, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
            let response = try client.readResponse()
            #expect(response.status == status, "\(response.bodyText)", sourceLocation: sourceLocation)
            #expect(response.header("connection")?.lowercased() == "close", sourceLocation: sourceLocation)
            #expect(E2E.jsonRequestID(response) == response.header("x-request-id"), sourceLocation: sourceLocation)
            #expect(client.waitForClose(), "connection left open", sourceLocation: sourceLocation)
        }

        @Test func headerBlockTooLargeIs431() async throws {
            try await Self.withLimits { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /echo HTTP/1.1\r\nHost: test.local\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n")
                try Self.expectRefused(client, status: 431)
                #expect(backend.connectionsAccepted == 0)
            }
        }

        @Test func headerBlockJustUnderLimitPasses() async throws {
            try await Self.withLimits { _, proxy in
                let response = try proxy.get("/echo", headers: ["X-Big: \(String(repeating: "a", count: 800))"])
                #expect(response.status == 200)
            }
        }

        @Test func uriTooLongIs414() async throws {
            try await Self.withLimits { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /echo?\(String(repeating: "q", count: 200)) HTTP/1.1\r\nHost: test.local\r\n\r\n")
                try Self.expectRefused(client, status: 414)
                #expect(backend.connectionsAccepted == 0)
            }
        }

        @Test func uriTooLongDetectedBeforeHeadCompletes() async throws {
            try await Self.withLimits { _, proxy in
                let client = try RawClient(port: proxy.port)
                // No line end yet: the proxy must not wait for the rest of the head.
                try client.send("GET /\(String(repeating: "q", count: 300))")
                try Self.expectRefused(client, status: 414)
            }
        }

        @Test func contentLengthAboveLimitIs413() async throws {
            try await Self.withLimits { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 1001\r\n\r\n")
                try Self.expectRefused(client, status: 413)
                #expect(backend.connectionsAccepted == 0)
            }
        }

        @Test func contentLengthAtLimitPasses() async throws {
            try await Self.withLimits { _, proxy in
                let body = String(repeating: "b", count: 1000)
                let response = try proxy.request("POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 1000\r\n\r\n\(body)")
                #expect(response.status == 200)
                #expect(try EchoedRequest(response).bodyBytes == 1000)
            }
        }

        @Test func oversizedChunkIs413() async throws {
            try await Self.withLimits { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n")
                try Self.expectRefused(client, status: 413)
                // The backend never got a complete request, so it never answered one.
                #expect(await E2E.eventually { backend.requestURIs.withLockedValue { $0.count } <= 1 })
            }
        }

        @Test func chunkedBodyGrowingPastLimitIs413() async throws {
            try await Self.withLimits { _, proxy in
                let client = try RawClient(port: proxy.port)
                let chunk = "190\r\n" + String(repeating: "c", count: 400) + "\r\n"
                try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk)
                try await Task.sleep(for: .milliseconds(50))
                try client.send(chunk + "0\r\n\r\n")
                try Self.expectRefused(client, status: 413)
            }
        }

        @Test func chunkedBodyAtLimitPasses() async throws {
            try await Self.withLimits { _, proxy in
                let chunk = "1f4\r\n" + String(repeating: "c", count: 500) + "\r\n"
                let response = try proxy.request(
                    "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + "0\r\n\r\n")
                #expect(response.status == 200)
                #expect(try EchoedRequest(response).bodyBytes == 1000)
            }
        }
    }
}
