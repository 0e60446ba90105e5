import LoomConfig
import LoomHTTP
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Upstream failures become the right status with a JSON body naming the request id, or a
    /// cut connection once the response has started.
    @Suite(.serialized) struct ErrorMappingTests {
        /// Checks status, JSON error code and that the body's request id is the header's.
        static func expectError(_ response: RawResponse, status: Int, code: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
            #expect(response.status == status, "\(response.bodyText)", sourceLocation: sourceLocation)
            #expect(E2E.json(response)["error"] as? String == code, sourceLocation: sourceLocation)
            #expect(E2E.json(response)["status"] as? Int == status, sourceLocation: sourceLocation)
            let id = response.header("x-request-id")
            #expect(id != nil, sourceLocation: sourceLocation)
            #expect(E2E.jsonRequestID(response) == id, sourceLocation: sourceLocation)
        }

        @Test func connectRefusedIs502() async throws {
            let port = try E2E.closedPort()
            try await E2E.withProxy(ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: port)])) { proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /x HTTP/1.1\r\nHost: test.local\r\n\r\n")
                Self.expectError(try client.readResponse(), status: 502, code: "bad_gateway")
                // The client connection survives an upstream failure.
                try client.send("GET /y HTTP/1.1\r\nHost: test.local\r\nX-Request-ID: second\r\n\r\n")
                let second = try client.readResponse()
                Self.expectError(second, status: 502, code: "bad_gateway")
                #expect(E2E.jsonRequestID(second) == "second")
            }
        }

        @Test(arguments: [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "garbage\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            // A coding Loom would have to drop silently: rejected like nginx does.
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ])
        func malformedUpstreamResponseIs502(raw: String) async throws {
            try await E2E.withRawBackend(raw) { _, proxy in
                let response = try proxy.get("/")
                Self.expectError(response, status: 502, code: "bad_gateway")
            }
        }

        @Test func upstreamClosingMidBodyCutsTheClientConnection() async throws {
            try await E2E.withRawBackend("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial") { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                #expect(head.header("content-length") == "100")
                let (rest, end) = client.readToEnd()
                #expect(end != .timeout)
                #expect(rest.count < 100)
                #expect(String(decoding: rest, as: UTF8.self) == "partial")
            }
        }

        @Test func upstreamWithoutEndpointsIs503() async throws {
            var config = ProxyHarness.config(endpoints: [])
            config.upstreams = [UpstreamConfig(name: "backend", endpoints: [])]
            try await E2E.withProxy(config) { proxy in
                Self.expectError(try proxy.get("/"), status: 503, code: "service_unavailable")
            }
        }

        @Test func gatewayErrorStatusMapping() {
            #expect(GatewayError(.connectTimeout).status == 504)
            #expect(GatewayError(.connectFailed("refused")).status == 502)
            #expect(GatewayError(.upstreamClosed).status == 502)
            #expect(GatewayError(.invalidUpstreamResponse(.invalidStatusLine)).status == 502)
            #expect(GatewayError(.responseHeaderTimeout).status == 504)
            #expect(GatewayError(.idleTimeout).status == 504)
            #expect(GatewayError(.requestTimeout).status == 504)
            #expect(GatewayError(.noEndpointAvailable(retryAfter: 3)).status == 503)
            #expect(GatewayError(.perTryTimeout).status == 504)
            #expect(GatewayError(.requestHeaderTimeout).status == 408)
            #expect(GatewayError(.invalidRequest(.bodyTooLarge)).status == 413)
            // The bootstrap's connect timeout is what the data path sees; it must map to 504.
            #expect(DownstreamHandler.connectError(ChannelError.connectTimeout(.milliseconds(300))).kind == .connectTimeout)
        }
    }
}
