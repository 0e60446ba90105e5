import LoomConfig
import NIOCore
import NIOPosix
import Testing

@testable import LoomProxy

/// Routing through a running proxy: configurations loaded from Loom YAML and WarpDrive TOML
/// text, several real backends, and which backend got the request with which path.
extension ProxyE2E {
    @Suite struct RoutingTests {
        /// The "Mode 2" example of warpdrive-routing.md, each of its `→` lines.
        @Test func warpDriveModeTwoExample() async throws {
            try await E2E.withBackends(3, dialect: .warpDriveTOML, """
                [server]
                http_port = 8080
                [upstreams.rails]
                host = "127.0.0.1"
                port = {port0}
                [upstreams.cable]
                host = "127.0.0.1"
                port = {port1}
                [upstreams.sidekiq]
                host = "127.0.0.1"
                port = {port2}
                [[routes]]
                path_prefix = "/cable"
                upstream = "cable"
                [[routes]]
                path_prefix = "/sidekiq"
                upstream = "sidekiq"
                strip_prefix = true # /sidekiq/jobs → /jobs
                [[routes]]
                path_prefix = "/"
                upstream = "rails"
                """) { backends, proxy in
                // GET /cable → 127.0.0.1:3001
                try E2E.expectForwarded(proxy, backends, "/cable", "backend1 /cable")
                // GET /sidekiq/jobs → 127.0.0.1:7080/jobs
                try E2E.expectForwarded(proxy, backends, "/sidekiq/jobs", "backend2 /jobs")
                // GET / → 127.0.0.1:3000
                try E2E.expectForwarded(proxy, backends, "/", "backend0 /")
                try E2E.expectForwarded(proxy, backends, "/cables", "backend0 /cables")
            }
        }

        /// warpdrive-routing.md's regex, header and method examples, through the proxy.
        @Test func warpDriveRegexHeaderAndMethodExamples() async throws {
            try await E2E.withBackends(4, dialect: .warpDriveTOML, """
                [upstreams.posts_service]
                host = "127.0.0.1"
                port = {port0}
                [upstreams.api_v2]
                host = "127.0.0.1"
                port = {port1}
                [upstreams.api_v1]
                host = "127.0.0.1"
                port = {port2}
                [upstreams.admin_writable]
                host = "127.0.0.1"
                port = {port3}
                [[routes]]
                path_regex = "^/users/[0-9]+/posts"
                upstream = "posts_service"
                [[routes]]
                path_prefix = "/admin"
                methods = ["PUT", "DELETE"]
                upstream = "admin_writable"
                [[routes]]
                header = { name = "X-API-Version", value = "v2" }
                upstream = "api_v2"
                [[routes]]
                header = { name = "X-API-Version", value = "v1" }
                upstream = "api_v1"
                [[routes]]
                query = [{ name = "version", value = "2" }]
                upstream = "api_v2"
                """) { backends, proxy in
                try E2E.expectForwarded(proxy, backends, "GET /users/42/posts?page=2 HTTP/1.1\r\nHost: a\r\n\r\n", "backend0 /users/42/posts?page=2")
                try E2E.expectForwarded(proxy, backends, "GET /users/x/posts HTTP/1.1\r\nHost: a\r\n\r\n", "404")
                try E2E.expectForwarded(proxy, backends, "GET /things HTTP/1.1\r\nHost: a\r\nx-api-version: v2\r\n\r\n", "backend1 /things")
                try E2E.expectForwarded(proxy, backends, "GET /things HTTP/1.1\r\nHost: a\r\nX-API-Version: v1\r\n\r\n", "backend2 /things")
                try E2E.expectForwarded(proxy, backends, "GET /things HTTP/1.1\r\nHost: a\r\nX-API-Version: v3\r\n\r\n", "404")
                try E2E.expectForwarded(proxy, backends, "GET /things?version=%32 HTTP/1.1\r\nHost: a\r\n\r\n", "backend1 /things?version=%32")
                try E2E.expectForwarded(proxy, backends, "DELETE /admin/users/1 HTTP/1.1\r\nHost: a\r\n\r\n", "backend3 /admin/users/1")
                let notAllowed = try proxy.request("GET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(notAllowed.status == 405)
                #expect(notAllowed.header("allow") == "DELETE, PUT")
            }
        }

        /// warpdrive-routing.md: `rewrite = "/new-api"  # /old-api/users → /new-api/users`; and
        /// regular-expression rewrites, whose own query comes before the client's.
        @Test func rewritesThroughTheProxy() async throws {
            try await E2E.withBackends(1, dialect: .warpDriveTOML, """
                [upstreams.api]
                host = "127.0.0.1"
                port = {port0}
                [[routes]]
                path_prefix = "/old-api"
                upstream = "api"
                rewrite = "/new-api"
                [[routes]]
                path_regex = "^/users/[0-9]+/posts"
                upstream = "api"
                rewrite = { regex = "^/users/(?<user>[0-9]+)/posts", replacement = "/posts?user={user}" }
                [[routes]]
                path_prefix = "/u"
                upstream = "api"
                rewrite = { regex = "^/u/([^/]+)-profile", replacement = "/profiles/$1" }
                """) { backends, proxy in
                try E2E.expectForwarded(proxy, backends, "/old-api/users", "backend0 /new-api/users")
                try E2E.expectForwarded(proxy, backends, "/old-api?x=1", "backend0 /new-api?x=1")
                try E2E.expectForwarded(proxy, backends, "/users/42/posts/7?page=2", "backend0 /posts?user=42/7&page=2")
                try E2E.expectForwarded(proxy, backends, "/users/42/posts", "backend0 /posts?user=42")
                try E2E.expectForwarded(proxy, backends, "/u/ann-profile/x", "backend0 /profiles/ann/x")
                // Captured text must not smuggle a dot segment past routing: the request's
                // path had none, the rewritten one would (`/profiles/../admin`).
                try E2E.expectForwarded(proxy, backends, "/u/..-profile/admin", "400")
            }
        }

        /// Request and response header rules: remove, set (replacing every field of the name),
        /// add; on the response, `/cookies` sends three Set-Cookie fields.
        @Test func headerRulesOnBothSides() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                listeners: [{name: http, address: "127.0.0.1:8080"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes:
                  - id: app
                    upstream: app
                    remove_headers: [Cookie, Via]
                    set_headers: {X-Tenant: acme, User-Agent: loom-test}
                    add_headers: [{name: X-Extra, value: "1"}, {name: X-Extra, value: "2"}]
                    remove_response_headers: [Set-Cookie]
                    set_response_headers: {Content-Type: text/plain, Cache-Control: no-store}
                    add_response_headers: {X-Frame-Options: DENY}
                """) { _, proxy in
                let response = try proxy.request(
                    "GET /echo HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\nUser-Agent: curl\r\nX-Tenant: other\r\nX-Tenant: more\r\n\r\n")
                let echoed = try EchoedRequest(response)
                #expect(!echoed.has("cookie"))
                #expect(!echoed.has("via"))
                #expect(echoed.values("x-tenant") == ["acme"])
                #expect(echoed.values("user-agent") == ["loom-test"])
                #expect(echoed.values("x-extra") == ["1", "2"])
                #expect(response.headers("content-type") == ["text/plain"])
                #expect(response.header("cache-control") == "no-store")
                #expect(response.header("x-frame-options") == "DENY")
                let cookies = try proxy.request("GET /cookies HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(cookies.status == 200)
                #expect(cookies.headers("set-cookie").isEmpty)
                #expect(cookies.header("x-frame-options") == "DENY")
                #expect(cookies.bodyText == "ok")
            }
        }

        @Test func redirectsKeepParametersAndQuery() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                listeners: [{name: http, address: "127.0.0.1:8080"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes:
                  - {id: user, path: "/u/{id}", redirect: {location: "https://new.example.com/users/{id}", status: 308}}
                  - {id: old, path: /old, redirect: {location: "/new?from=old"}}
                """) { _, proxy in
                let user = try proxy.request("GET /u/42?tab=posts HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(user.status == 308)
                #expect(user.header("location") == "https://new.example.com/users/42?tab=posts")
                #expect(user.header("content-length") == "0")
                let old = try proxy.request("HEAD /old?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(old.status == 301)
                #expect(old.header("location") == "/new?from=old&x=1")
            }
        }

        /// consistent_hash on a header: one user always reaches the same backend, and users
        /// spread over all three.
        @Test func consistentHashKeepsAKeyOnOneBackend() async throws {
            try await E2E.withBackends(3, dialect: .loomYAML, """
                listeners: [{name: http, address: "127.0.0.1:8080"}]
                upstreams:
                  - name: app
                    endpoints: ["127.0.0.1:{port0}", "127.0.0.1:{port1}", "127.0.0.1:{port2}"]
                    load_balancer: consistent_hash
                    consistent_hash: {hash_key: "header:X-User"}
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                var homes: [String: String] = [:]
                for round in 0..<3 {
                    for user in 0..<30 {
                        let got = try E2E.forwarded(proxy, backends, "GET /x HTTP/1.1\r\nHost: a\r\nX-User: user\(user)\r\n\r\n")
                        let backend = String(got.prefix { $0 != " " })
                        if round == 0 { homes["user\(user)"] = backend } else { #expect(homes["user\(user)"] == backend, "user\(user)") }
                    }
                }
                #expect(Set(homes.values) == ["backend0", "backend1", "backend2"])
            }
        }

        /// least_conn counts requests in flight across event loops: while one backend holds a
        /// slow request, quick ones all go to the other.
        @Test func leastConnAvoidsTheBusyBackend() async throws {
            try await E2E.withBackends(2, dialect: .loomYAML, """
                listeners: [{name: http, address: "127.0.0.1:8080"}]
                upstreams:
                  - {name: app, endpoints: ["127.0.0.1:{port0}", "127.0.0.1:{port1}"], load_balancer: least_conn}
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let slow = try RawClient(port: proxy.port)
                try slow.send("GET /delay?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n")
                // Wait until the slow request reached its backend.
                #expect(await E2E.eventually { backends.contains { $0.requestURIs.withLockedValue { $0.contains("/delay?ms=1500") } } })
                let busy = backends.firstIndex { $0.requestURIs.withLockedValue { $0.contains("/delay?ms=1500") } }!
                for index in 0..<6 {
                    #expect(try E2E.forwarded(proxy, backends, "GET /quick/\(index) HTTP/1.1\r\nHost: a\r\n\r\n") == "backend\(1 - busy) /quick/\(index)")
                }
                #expect(try slow.readResponse().status == 200)
                // With nothing in flight, both take turns again.
                let after = try (0..<4).map { try E2E.forwarded(proxy, backends, "GET /after/\($0) HTTP/1.1\r\nHost: a\r\n\r\n") }
                #expect(Set(after.map { $0.prefix(8) }).count == 2, "\(after)")
            }
        }

        @Test func parametersWildcardHostsAndMethodsThroughTheProxy() async throws {
            try await E2E.withBackends(2, dialect: .loomYAML, """
                listeners: [{name: http, address: "127.0.0.1:8080"}]
                upstreams:
                  - {name: users, endpoints: ["127.0.0.1:{port0}"]}
                  - {name: tenants, endpoints: ["127.0.0.1:{port1}"]}
                routes:
                  - {id: me, path: /users/me, respond: {status: 200, body: me}}
                  - {id: user, path: "/users/{id}", methods: [GET], upstream: users}
                  - {id: tenant, path: "/t/{tenant}/*", host: "*.example.com", upstream: tenants, strip_prefix: true}
                """) { backends, proxy in
                try E2E.expectForwarded(proxy, backends, "GET /users/42?full=1 HTTP/1.1\r\nHost: a\r\n\r\n", "backend0 /users/42?full=1")
                #expect(try proxy.request("GET /users/me HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "me")
                try E2E.expectForwarded(proxy, backends, "GET /t/acme/orders/7?x=1 HTTP/1.1\r\nHost: EU.Example.com:8080\r\n\r\n", "backend1 /orders/7?x=1")
                try E2E.expectForwarded(proxy, backends, "GET /t/acme HTTP/1.1\r\nHost: a.b.example.com\r\n\r\n", "backend1 /")
                // The wildcard needs at least one label before the suffix.
                try E2E.expectForwarded(proxy, backends, "GET /t/acme HTTP/1.1\r\nHost: example.com\r\n\r\n", "404")
                let notAllowed = try proxy.request("DELETE /users/42 HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(notAllowed.status == 405)
                #expect(notAllowed.header("allow") == "GET")
                // A parameter takes a whole non-empty segment.
                try E2E.expectForwarded(proxy, backends, "GET /users/ HTTP/1.1\r\nHost: a\r\n\r\n", "404")
                try E2E.expectForwarded(proxy, backends, "GET /users/42/x HTTP/1.1\r\nHost: a\r\n\r\n", "404")
            }
        }
    }
}
