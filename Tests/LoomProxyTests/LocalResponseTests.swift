import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Answers Loom gives itself: `respond` routes, 404 and 405.
    @Suite(.serialized) struct LocalResponseTests {
        static let routes = [
            RouteConfig(
                name: "static", match: RouteMatch(path: .exact("/hello")),
                action: .respond(StaticResponse(status: 201, headers: [HeaderPair(name: "X-Static", value: "yes")], body: "hi there"))),
            RouteConfig(
                name: "limited", match: RouteMatch(path: .prefix("/only"), methods: ["POST", "GET"]), action: .proxy(upstream: "backend")),
            RouteConfig(name: "api", match: RouteMatch(path: .prefix("/api")), action: .proxy(upstream: "backend")),
        ]

        static func withRoutes(_ body: (ProxyHarness) async throws -> Void) async throws {
            try await E2E.withBackend(configure: { $0.routes = routes }) { _, proxy in try await body(proxy) }
        }

        @Test func respondRouteAnswersWithStatusHeadersAndBody() async throws {
            try await Self.withRoutes { proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /hello HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 201)
                #expect(response.header("x-static") == "yes")
                #expect(response.bodyText == "hi there")
                #expect(response.header("x-request-id")?.count == 32)

                try client.send("HEAD /hello HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let head = try client.readResponse(headRequest: true)
                #expect(head.status == 201)
                #expect(head.header("content-length") == "8")
                // No body bytes may follow: the next response must start right away.
                try client.send("GET /hello HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let again = try client.readResponse()
                #expect(again.status == 201)
                #expect(again.bodyText == "hi there")
            }
        }

        @Test func unknownPathIs404WithRequestID() async throws {
            try await Self.withRoutes { proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /nowhere HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 404)
                #expect(response.header("content-type") == "application/json")
                let id = try #require(response.header("x-request-id"))
                #expect(E2E.jsonRequestID(response) == id)
                #expect(E2E.json(response)["error"] as? String == "not_found")
                // A bodiless request keeps the connection.
                try client.send("GET /api/echo HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(try client.readResponse().status == 200)
            }
        }

        @Test func clientRequestIDAppearsInErrorBody() async throws {
            try await Self.withRoutes { proxy in
                let response = try proxy.get("/nowhere", headers: ["X-Request-ID: my-id-1"])
                #expect(response.status == 404)
                #expect(response.header("x-request-id") == "my-id-1")
                #expect(E2E.jsonRequestID(response) == "my-id-1")
            }
        }

        @Test func wrongMethodIs405WithAllow() async throws {
            try await Self.withRoutes { proxy in
                let response = try proxy.request("DELETE /only/thing HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(response.status == 405)
                #expect(response.header("allow") == "GET, POST")
                #expect(E2E.jsonRequestID(response) == response.header("x-request-id"))
                let allowed = try proxy.request("POST /only/echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 0\r\n\r\n")
                #expect(allowed.status == 200)
            }
        }

        @Test func localAnswerToRequestWithUnreadBodyCloses() async throws {
            try await Self.withRoutes { proxy in
                let client = try RawClient(port: proxy.port)
                // Only part of the body has arrived: where the next request starts is unknown.
                try client.send("POST /nowhere HTTP/1.1\r\nHost: test.local\r\nContent-Length: 500\r\n\r\nhello")
                let response = try client.readResponse()
                #expect(response.status == 404)
                #expect(response.header("connection")?.lowercased() == "close")
                #expect(client.waitForClose())
            }
        }

        @Test func localAnswerSkipsAnAlreadyBufferedBodyAndKeepsTheConnection() async throws {
            try await Self.withRoutes { proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("POST /nowhere HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\n\r\nhello")
                let response = try client.readResponse()
                #expect(response.status == 404)
                #expect(response.header("connection") == nil)
                try client.send("GET /only/echo HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(try client.readResponse().status == 200)
            }
        }
    }
}
