import LoomConfig
import LoomFilters
import NIOCore
import Testing

@testable import LoomProxy

/// Filters through a running proxy with a real backend: CORS preflights and actual requests,
/// security headers, ip_filter behind a trusted proxy, a failing filter answered with 500, and
/// a filter's changes reaching the upstream.
extension ProxyE2E {
    @Suite struct FilterE2ETests {
        @Test func corsPreflightsAndActualRequests() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                cors: {allow_origins: ["https://app.example.com"], allow_methods: [GET, PUT], allow_headers: [X-Token], max_age: 10m}
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let preflight = try proxy.request(
                    "OPTIONS /api HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-token\r\n\r\n")
                #expect(preflight.status == 204)
                #expect(preflight.header("access-control-allow-origin") == "https://app.example.com")
                #expect(preflight.header("access-control-allow-methods") == "GET, PUT")
                #expect(preflight.header("access-control-allow-headers") == "x-token")
                #expect(preflight.header("access-control-max-age") == "600")
                #expect(preflight.header("x-request-id") != nil)
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 0, "a preflight never reaches the upstream")

                let refused = try proxy.request(
                    "OPTIONS /api HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.test\r\nAccess-Control-Request-Method: GET\r\n\r\n")
                #expect(refused.status == 403)
                #expect(E2E.json(refused)["error"] as? String == "cors_rejected")
                #expect(refused.header("access-control-allow-origin") == nil)

                // Not a preflight: proxied.
                let options = try proxy.request("OPTIONS /api HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\r\n")
                #expect(options.status == 200)
                #expect(try EchoedRequest(options).method == "OPTIONS")

                let actual = try proxy.request("GET /api HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\r\n")
                #expect(actual.status == 200)
                #expect(actual.header("access-control-allow-origin") == "https://app.example.com")
                #expect(actual.headers("vary").contains("Origin"))
                let other = try proxy.request("GET /api HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.test\r\n\r\n")
                #expect(other.status == 200 && other.header("access-control-allow-origin") == nil)
            }
        }

        @Test func securityHeadersOnProxiedAndLocalResponses() async throws {
            try await Self.withRawUpstream("HTTP/1.1 200 OK\r\nContent-Security-Policy: default-src https:\r\nContent-Length: 2\r\n\r\nok", """
                filters: [{type: security_headers, hsts: {max_age: 1h}, content_security_policy: "default-src 'self'"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{raw}"]}]
                routes:
                  - {id: ping, path: /ping, respond: {status: 200, body: pong}}
                  - {id: all, upstream: app}
                """) { proxy in
                let proxied = try proxy.get("/page")
                #expect(proxied.header("strict-transport-security") == "max-age=3600")
                #expect(proxied.header("x-content-type-options") == "nosniff")
                #expect(proxied.header("x-frame-options") == "DENY")
                #expect(proxied.headers("content-security-policy") == ["default-src https:"], "the upstream's own policy wins")
                let local = try proxy.get("/ping")
                #expect(local.bodyText == "pong")
                #expect(local.header("content-security-policy") == "default-src 'self'")
                #expect(local.header("referrer-policy") == "strict-origin-when-cross-origin")
            }
        }

        /// The client an ip_filter judges is the TCP peer, unless the peer is a trusted proxy:
        /// then the nearest untrusted `X-Forwarded-For` address.
        @Test func ipFilterSeesThroughTrustedProxiesOnly() async throws {
            let rules = """
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app, filters: [{type: ip_filter, deny: ["203.0.113.0/24"]}]}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, "server: {forwarding: {trusted_proxies: [127.0.0.1]}}\n" + rules) { _, proxy in
                let blocked = try proxy.get("/", headers: ["X-Forwarded-For: 203.0.113.5"])
                #expect(blocked.status == 403)
                #expect(E2E.json(blocked)["error"] as? String == "forbidden")
                #expect(try proxy.get("/", headers: ["X-Forwarded-For: 203.0.113.5, 127.0.0.1"]).status == 403, "trusted hops are skipped")
                #expect(try proxy.get("/", headers: ["X-Forwarded-For: 203.0.113.5, 198.51.100.2"]).status == 200, "the nearest untrusted hop counts")
            }
            try await E2E.withBackends(1, dialect: .loomYAML, rules) { _, proxy in
                let response = try proxy.get("/", headers: ["X-Forwarded-For: 203.0.113.5"])
                #expect(response.status == 200, "an untrusted peer cannot claim an address")
            }
        }

        /// Loom's top-level `rate_limit`: the burst passes, the next request gets 429 with
        /// `Retry-After` and the RateLimit fields, and tokens come back at the rate. Buckets
        /// are shared by the proxy's two event loops (each request is a new connection).
        @Test func rateLimitBurstAndRecovery() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                rate_limit: {enabled: true, rate: 5, burst: 3, key: client_ip, store: {type: memory}}
                cors: {allow_origins: ["https://app.example.com"]}
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let burst = try (0..<3).map { try proxy.get("/r/\($0)") }
                #expect(burst.map(\.status) == [200, 200, 200])
                #expect(burst.map { $0.header("ratelimit-remaining") } == ["2", "1", "0"])
                #expect(burst.allSatisfy { $0.header("ratelimit-limit") == "3" })
                let limited = try proxy.get("/r/3", headers: ["Origin: https://app.example.com"])
                #expect(limited.status == 429)
                #expect(limited.header("access-control-allow-origin") == "https://app.example.com", "a browser can read the 429")
                #expect(E2E.json(limited)["error"] as? String == "too_many_requests")
                #expect(limited.header("retry-after") == "1")
                #expect(limited.header("ratelimit-remaining") == "0")
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 3, "the limited request never went upstream")
                try await Task.sleep(for: .milliseconds(250))  // one token at 5 per second
                #expect(try proxy.get("/r/4").status == 200)
                #expect(try proxy.get("/r/5").status == 429)
            }
        }

        /// WarpDrive's `require_auth` with `server.admin_token`: `X-Admin-Token` must carry it;
        /// the token is not forwarded.
        @Test func requireAuthChecksTheAdminToken() async throws {
            try await E2E.withBackends(1, dialect: .warpDriveTOML, """
                [server]
                admin_token = "${ADMIN_TOKEN}"
                [upstreams.sidekiq]
                host = "127.0.0.1"
                port = {port0}
                [[routes]]
                path_prefix = "/sidekiq"
                upstream = "sidekiq"
                require_auth = true
                """, environment: ["ADMIN_TOKEN": "t0ken"]) { backends, proxy in
                let refused = try proxy.get("/sidekiq/queues")
                #expect(refused.status == 401)
                #expect(E2E.json(refused)["error"] as? String == "unauthorized")
                #expect(try proxy.get("/sidekiq/queues", headers: ["X-Admin-Token: guess"]).status == 401)
                let allowed = try proxy.get("/sidekiq/queues", headers: ["X-Admin-Token: t0ken"])
                #expect(allowed.status == 200)
                #expect(!(try EchoedRequest(allowed)).has("x-admin-token"))
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 1)
            }
        }

        /// Review regressions: a global rate limit is one budget across routes; a route's own
        /// response rule counts as present for security_headers; an ip_filter reads every
        /// X-Forwarded-For line, and an entry with a port is read without it.
        @Test func globalFiltersAreSharedAndSeeWhatTheRouteSets() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                server: {forwarding: {trusted_proxies: [127.0.0.1]}}
                rate_limit: {rate: 0.01, burst: 3}
                filters: [{type: security_headers}, {type: ip_filter, deny: ["203.0.113.0/24"]}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes:
                  - {id: a, path: "/a/*", upstream: app, set_response_headers: {X-Frame-Options: SAMEORIGIN}}
                  - {id: b, path: "/b/*", upstream: app}
                """) { _, proxy in
                let framed = try proxy.get("/a/1", headers: ["X-Forwarded-For: 198.51.100.1"])
                #expect(framed.headers("x-frame-options") == ["SAMEORIGIN"], "the route's own value, once")
                #expect(try proxy.get("/b/1", headers: ["X-Forwarded-For: 198.51.100.1"]).headers("x-frame-options") == ["DENY"])
                #expect(try proxy.get("/b/2", headers: ["X-Forwarded-For: 198.51.100.1"]).status == 200)
                #expect(try proxy.get("/a/2", headers: ["X-Forwarded-For: 198.51.100.1"]).status == 429, "three requests over two routes used up one budget")
                // A second X-Forwarded-For line (a proxy that adds its own) is read, and so is a port.
                let twoLines = try proxy.get("/a/3", headers: ["X-Forwarded-For: 10.1.1.1", "X-Forwarded-For: 203.0.113.9"])
                #expect(twoLines.status == 403)
                #expect(try proxy.get("/a/4", headers: ["X-Forwarded-For: 203.0.113.9:5678"]).status == 403)
            }
        }

        /// Stands in for a filter with a bug.
        struct Broken: HTTPFilter {
            let name = "broken"
            let inResponse: Bool
            struct Failure: Error {}
            func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
                if !inResponse { throw Failure() }
                return .continue
            }
            func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
                if inResponse { throw Failure() }
            }
        }

        /// Changes the request the upstream sees.
        struct Rewriter: HTTPFilter {
            let name = "rewriter"
            func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
                request.upstreamChanges.set("X-User", "alice:\(request.parameters["id"] ?? "?")")
                request.upstreamChanges.set("X-Rest", "[\(request.remainder)]")
                request.upstreamChanges.remove("X-Secret")
                return .continue
            }
        }

        @Test func aFailingFilterAnswers500AndTheConnectionLives() async throws {
            var configuration = ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: try E2E.closedPort())])
            configuration.routes = [
                RouteConfig(name: "req", match: RouteMatch(path: .prefix("/req")), action: .respond(StaticResponse(body: "never"))),
                RouteConfig(name: "resp", match: RouteMatch(path: .prefix("/resp")), action: .respond(StaticResponse(body: "sent"))),
            ]
            configuration.routes[0].filters = [FilterConfig(.ipFilter(IPFilterSettings()))]
            configuration.routes[1].filters = [FilterConfig(.securityHeaders(SecurityHeadersSettings()))]
            let registry = FilterRegistry.builtIn
                .registering("ip_filter") { _ in Broken(inResponse: false) }
                .registering("security_headers") { _ in Broken(inResponse: true) }
            try await E2E.withProxy(configuration, filters: registry) { proxy in
                let client = try RawClient(port: proxy.port)
                for _ in 0..<2 {
                    try client.send("GET /req HTTP/1.1\r\nHost: a\r\n\r\n")
                    let response = try client.readResponse()
                    #expect(response.status == 500)
                    #expect(E2E.json(response)["error"] as? String == "internal_error")
                    #expect(E2E.jsonRequestID(response) == response.header("x-request-id"))
                }
                // A filter failing on the response head: the response goes out unchanged.
                try client.send("GET /resp HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200 && response.bodyText == "sent")
                #expect(await E2E.eventually { proxy.logs.all.contains { ($0["error"]).map { "\($0)".contains("filter broken failed") } ?? false } })
            }
        }

        @Test func filterChangesReachTheUpstream() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: user, path: "/users/{id}/*", upstream: app, filters: [{type: ip_filter, deny: ["192.0.2.1"]}], set_headers: {X-User: route}}]
                """, filters: FilterRegistry.builtIn.registering("ip_filter") { _ in Rewriter() }) { _, proxy in
                let response = try proxy.get("/users/42", headers: ["X-Secret: s3cret", "X-User: mallory"])
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("x-user") == ["alice:42"], "the filter's set replaces the client's and the route's")
                #expect(!echoed.has("x-secret"))
                #expect(echoed.values("x-rest") == ["[]"], "nothing followed the parameter")
                let deeper = try EchoedRequest(proxy.get("/users/7/orders/1?all"))
                #expect(deeper.values("x-user") == ["alice:7"])
                #expect(deeper.values("x-rest") == ["[/orders/1]"], "the wildcard's remainder, without the query")
            }
        }

        /// `body_limit` on one route: a declared length over it is refused before anything
        /// goes upstream; a chunked body is refused when its count passes it; smaller bodies
        /// pass whole.
        @Test func bodyLimitRefusesLargeBodiesDeclaredOrStreamed() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes:
                  - {id: upload, path: /upload, upstream: app, filters: [{type: body_limit, max_size: 1k}]}
                  - {id: all, upstream: app}
                """) { backends, proxy in
                let declared = try proxy.request("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n" + String(repeating: "x", count: 1025))
                #expect(declared.status == 413 && E2E.json(declared)["error"] as? String == "payload_too_large")
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 0)

                let fits = try proxy.request("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n" + String(repeating: "y", count: 512) + "\r\n200\r\n" + String(repeating: "y", count: 512) + "\r\n0\r\n\r\n")
                #expect(fits.status == 200)
                #expect(try EchoedRequest(fits).bodyBytes == 1024)

                let client = try RawClient(port: proxy.port)
                try client.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n300\r\n" + String(repeating: "z", count: 768) + "\r\n")
                try client.send("300\r\n" + String(repeating: "z", count: 768) + "\r\n")
                let streamed = try client.readResponse()
                #expect(streamed.status == 413 && streamed.header("connection") == "close", "the rest of the body is never read")

                let elsewhere = try proxy.request("POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + String(repeating: "x", count: 2000))
                #expect(elsewhere.status == 200, "other routes are not limited")
            }
        }

        /// An `api_key` filter that reads a query parameter: the key is neither forwarded nor
        /// logged.
        @Test func apiKeyInTheQueryIsNeitherForwardedNorLogged() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes:
                  - {id: open, path: /open, upstream: app}
                  - {id: all, upstream: app, filters: [{type: api_key, keys: [s3cret], query: key}]}
                """) { _, proxy in
                let allowed = try proxy.get("/feed?page=2&key=s3cret&sort=new")
                #expect(allowed.status == 200)
                #expect(try EchoedRequest(allowed).uri == "/feed?page=2&sort=new")
                #expect(try proxy.get("/feed?key=wrong").status == 401)
                #expect(try proxy.get("/open?key=s3cret&x=1").status == 200)
                #expect(await E2E.eventually { proxy.logs.all.count == 3 })
                let paths = proxy.logs.all.compactMap { $0["path"].map { "\($0)" } }
                #expect(paths == ["/feed?page=2&sort=new", "/feed", "/open?x=1"], "a key is never logged, on any route")
            }
        }

        /// A global `headers` filter changes every route's requests and responses, with the
        /// route's own rules applied under it.
        @Test func globalHeaderRules() async throws {
            try await Self.withRawUpstream("HTTP/1.1 200 OK\r\nServer: app/1.2\r\nX-Debug: 1\r\nContent-Length: 2\r\n\r\nok", """
                filters: [{type: headers, set_headers: {X-Env: prod}, remove_headers: [X-Internal], remove_response_headers: [Server, X-Debug], add_response_headers: {X-Served-By: loom}}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{raw}"]}]
                routes: [{id: all, upstream: app, add_response_headers: {X-Route: all}}]
                """) { proxy in
                let response = try proxy.get("/", headers: ["X-Env: dev", "X-Internal: secret"])
                #expect(response.header("server") == nil && response.header("x-debug") == nil)
                #expect(response.header("x-served-by") == "loom" && response.header("x-route") == "all")
                try await E2E.withBackends(1, dialect: .loomYAML, """
                    filters: [{type: headers, set_headers: {X-Env: prod}, remove_headers: [X-Internal]}]
                    upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                    routes: [{id: all, upstream: app}]
                    """) { _, echo in
                    let echoed = try EchoedRequest(try echo.get("/", headers: ["X-Env: dev", "X-Internal: secret"]))
                    #expect(echoed.values("x-env") == ["prod"] && !echoed.has("x-internal"))
                }
                let bad = ConfigLoader.load(text: "filters: [{type: headers}, {type: headers, set_headers: {Host: x}}]\n", fileName: "t.yaml", dialect: .loomYAML, environment: [:])
                let messages = bad.diagnostics.map(\.description)
                #expect(messages.contains(#"t.yaml:1:11 filters[0]: headers changes nothing: give add_headers, set_headers, remove_headers or their _response_ forms"#), "\(messages)")
                #expect(messages.contains { $0.contains("filters[1].set_headers.Host") } && !messages.contains { $0.contains("filters[1]: headers changes nothing") })
            }
        }

        /// `{raw}` in `text` is a raw backend answering `response` to everything.
        static func withRawUpstream(_ response: String, _ text: String, _ body: (ProxyHarness) async throws -> Void) async throws {
            try await ResilienceTests.withRawBackend(response, closeAfter: false) { raw in
                let result = ConfigLoader.load(text: text.replacingOccurrences(of: "{raw}", with: String(raw.port)), fileName: "t.yaml", dialect: .loomYAML, environment: [:])
                let configuration = try #require(result.configuration, "\(result.diagnostics)")
                try await E2E.withProxy(configuration) { proxy in try await body(proxy) }
            }
        }
    }
}
