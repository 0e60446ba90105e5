import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Every timeout of the data path, with small configured values. Assertions only check
    /// outcomes (status, closed or not), never tight upper bounds on elapsed time.
    @Suite(.serialized) struct TimeoutTests {
        @Test func responseHeaderTimeoutIs504() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.responseHeader = .milliseconds(300) }) { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /delay?ms=2000 HTTP/1.1\r\nHost: test.local\r\n\r\n")
                ErrorMappingTests.expectError(try client.readResponse(), status: 504, code: "gateway_timeout")
                // The client connection stays usable; the late upstream answer is not reused.
                try client.send("GET /echo?next HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let next = try client.readResponse()
                #expect(next.status == 200)
                #expect(try EchoedRequest(next).uri == "/echo?next")
            }
        }

        @Test func idleTimeoutAfterResponseStartCutsConnection() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.idle = .milliseconds(300) }) { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /stall HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                #expect(head.header("content-length") == "100")
                let (rest, end) = client.readToEnd()
                #expect(end != .timeout)
                #expect(String(decoding: rest, as: UTF8.self) == "partial")
            }
        }

        /// Waiting for the response head is governed by `response_header` alone: a shorter
        /// idle timeout must not cut it (it would silently cap every override).
        @Test func idleTimeoutDoesNotCapTheWaitForTheResponseHead() async throws {
            try await E2E.withBackend(configure: {
                $0.server.timeouts.idle = .milliseconds(300)
                $0.server.timeouts.responseHeader = .seconds(5)
            }) { _, proxy in
                let response = try proxy.get("/delay?ms=1000")
                #expect(response.status == 200)
                #expect(response.bodyText == "delayed 1000")
            }
        }

        @Test func totalRequestTimeoutIs504() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.request = .milliseconds(300) }) { _, proxy in
                let response = try proxy.get("/delay?ms=2000")
                ErrorMappingTests.expectError(response, status: 504, code: "gateway_timeout")
                #expect(E2E.json(response)["message"] as? String == "request took too long")
            }
        }

        @Test func routeTimeoutOverridesServerTimeout() async throws {
            let route = RouteConfig(
                name: "all", match: RouteMatch(path: .prefix("/")), action: .proxy(upstream: "backend"),
                timeouts: TimeoutOverrides(responseHeader: .milliseconds(300)))
            try await E2E.withBackend(route: route) { _, proxy in
                ErrorMappingTests.expectError(try proxy.get("/delay?ms=2000"), status: 504, code: "gateway_timeout")
                #expect(try proxy.get("/delay?ms=10").status == 200)
            }
        }

        /// Server, then upstream, then route: each level overrides the one before, in both
        /// directions (a longer route limit lifts a short upstream one, a shorter one cuts).
        @Test func routeTimeoutOverridesUpstreamTimeout() async throws {
            func route(_ name: String, _ responseHeader: Duration?) -> RouteConfig {
                var route = RouteConfig(
                    name: name, match: RouteMatch(path: .prefix("/\(name)")), action: .proxy(upstream: "backend"),
                    timeouts: TimeoutOverrides(responseHeader: responseHeader))
                route.stripPrefix = true
                return route
            }
            try await E2E.withBackend(configure: {
                $0.server.timeouts.responseHeader = .seconds(30)
                $0.upstreams[0].timeouts = TimeoutOverrides(responseHeader: .milliseconds(700))
                $0.routes = [route("patient", .seconds(10)), route("hasty", .milliseconds(200)), route("plain", nil)]
            }) { _, proxy in
                // The upstream's 700 ms, not the server's 30 s, for a route without its own.
                ErrorMappingTests.expectError(try proxy.get("/plain/delay?ms=3000"), status: 504, code: "gateway_timeout")
                #expect(try proxy.get("/plain/delay?ms=10").status == 200)
                // The route's 10 s over the upstream's 700 ms.
                #expect(try proxy.get("/patient/delay?ms=1500").status == 200)
                // The route's 200 ms under the upstream's 700 ms.
                ErrorMappingTests.expectError(try proxy.get("/hasty/delay?ms=450"), status: 504, code: "gateway_timeout")
            }
        }

        @Test func connectTimeoutIs504() async throws {
            let listener = try HangingListener()
            defer { listener.stop() }
            // Without a hanging connect on this machine the mapping is still covered by
            // `ErrorMappingTests.gatewayErrorStatusMapping`.
            try #require(listener.hangs, "could not make a connect hang on this machine")
            let config = ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: listener.port)]) {
                $0.server.timeouts.connect = .milliseconds(300)
            }
            try await E2E.withProxy(config) { proxy in
                let response = try proxy.get("/")
                ErrorMappingTests.expectError(response, status: 504, code: "gateway_timeout")
                #expect(E2E.json(response)["message"] as? String == "timed out connecting to upstream")
            }
        }

        /// The idle timer must not cut a connect shorter than the connect timeout.
        @Test func connectTimeoutIsNotCutShortByTheIdleTimeout() async throws {
            let listener = try HangingListener()
            defer { listener.stop() }
            try #require(listener.hangs, "could not make a connect hang on this machine")
            let config = ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: listener.port)]) {
                $0.server.timeouts.connect = .milliseconds(900)
                $0.server.timeouts.idle = .milliseconds(200)
            }
            try await E2E.withProxy(config) { proxy in
                let response = try proxy.get("/")
                #expect(E2E.json(response)["message"] as? String == "timed out connecting to upstream")
            }
        }

        /// A client that stops sending its body is the client's fault: 408, not an upstream 504.
        @Test func stalledUploadIs408() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.idle = .milliseconds(300) }) { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 10\r\n\r\nhello")
                let response = try client.readResponse()
                ErrorMappingTests.expectError(response, status: 408, code: "request_timeout")
                #expect(response.header("connection")?.lowercased() == "close")
                #expect(client.waitForClose())
            }
        }

        @Test func partialHeadGets408AndClose() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.requestHeader = .milliseconds(300) }) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /echo HTTP/1.1\r\nHost: test.local\r\n")
                let response = try client.readResponse()
                #expect(response.status == 408)
                #expect(response.header("connection")?.lowercased() == "close")
                #expect(E2E.jsonRequestID(response) == response.header("x-request-id"))
                #expect(client.waitForClose())
                #expect(backend.connectionsAccepted == 0)
            }
        }

        @Test func idleKeepAliveConnectionIsClosed() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.idle = .milliseconds(300) }) { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /echo HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(try client.readResponse().status == 200)
                let (rest, end) = client.readToEnd()
                #expect(end == .eof)
                #expect(rest.isEmpty)
            }
        }

        @Test func idleConnectionWithoutAnyRequestIsClosed() async throws {
            try await E2E.withBackend(configure: { $0.server.timeouts.idle = .milliseconds(300) }) { _, proxy in
                let client = try RawClient(port: proxy.port)
                #expect(client.readToEnd().end == .eof)
            }
        }
    }
}
