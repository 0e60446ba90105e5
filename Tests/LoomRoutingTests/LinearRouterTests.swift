import LoomConfig
import Testing

@testable import LoomRouting

private func route(_ name: String, _ path: PathMatch?, host: String? = nil, methods: [String]? = nil, priority: Int = 0, strip: Bool = false) -> RouteConfig {
    RouteConfig(name: name, priority: priority, match: RouteMatch(path: path, host: host, methods: methods), action: .proxy(upstream: "u"), stripPrefix: strip)
}

private func router(_ routes: [RouteConfig]) -> LinearRouter {
    LinearRouter(orderedRoutes: LoomConfiguration(origin: .environment, routes: routes).orderedRoutes)
}

@Suite struct LinearRouterTests {
    @Test func firstMatchWinsInFileOrder() {
        let r = router([route("cable", .prefix("/cable")), route("all", .prefix("/"))])
        #expect(r.match(method: "GET", host: nil, path: "/cable") == .matched(0))
        #expect(r.match(method: "GET", host: nil, path: "/cable/x") == .matched(0))
        #expect(r.match(method: "GET", host: nil, path: "/other") == .matched(1))
    }

    @Test func higherPriorityFirstThenFileOrder() {
        let r = router([route("a", .prefix("/")), route("b", .prefix("/"), priority: 5), route("c", .prefix("/"), priority: 5)])
        #expect(r.routes.map(\.name) == ["b", "c", "a"])
        #expect(r.match(method: "GET", host: nil, path: "/x") == .matched(0))
    }

    @Test(arguments: [
        ("/api", "/api", true), ("/api", "/api/", true), ("/api", "/api/users", true),
        ("/api", "/apis", false), ("/api", "/ap", false), ("/", "/anything", true),
        ("/api/", "/api/x", true), ("/api/", "/api", false),
    ])
    func prefixMatchesAtSegmentBoundary(prefix: String, path: String, expected: Bool) {
        #expect(LinearRouter.pathMatches(.prefix(prefix), path) == expected)
    }

    @Test func exactPathIsCaseSensitive() {
        #expect(LinearRouter.pathMatches(.exact("/health"), "/health"))
        #expect(!LinearRouter.pathMatches(.exact("/health"), "/Health"))
        #expect(!LinearRouter.pathMatches(.exact("/health"), "/health/"))
    }

    @Test func hostIgnoresPortAndCase() {
        let r = router([route("api", nil, host: "api.example.com"), route("www", nil, host: "www.example.com")])
        #expect(r.match(method: "GET", host: "API.Example.com:8080", path: "/") == .matched(0))
        #expect(r.match(method: "GET", host: "www.example.com", path: "/") == .matched(1))
        #expect(r.match(method: "GET", host: "other.example.com", path: "/") == .notFound)
        #expect(r.match(method: "GET", host: nil, path: "/") == .notFound)
        #expect(LinearRouter.stripPort("[::1]:80") == "[::1]")
        // A trailing dot names the same host (and must not escape a host rule).
        #expect(r.match(method: "GET", host: "api.example.com.", path: "/") == .matched(0))
        #expect(r.match(method: "GET", host: "api.example.com.:443", path: "/") == .matched(0))
    }

    @Test func methodMismatchIsMethodNotAllowedWithAllow() {
        let r = router([
            route("ro", .prefix("/admin"), methods: ["GET", "POST"]),
            route("rw", .prefix("/admin"), methods: ["PUT", "DELETE", "GET"]),
        ])
        #expect(r.match(method: "PUT", host: nil, path: "/admin/x") == .matched(1))
        #expect(r.match(method: "PATCH", host: nil, path: "/admin") == .methodNotAllowed(allowed: ["DELETE", "GET", "POST", "PUT"]))
        #expect(r.match(method: "PATCH", host: nil, path: "/elsewhere") == .notFound)
    }

    @Test(arguments: [
        ("/sidekiq", "/sidekiq/jobs", "/jobs"), ("/sidekiq", "/sidekiq", "/"), ("/sidekiq", "/sidekiq/", "/"),
        ("/api/", "/api/users", "/users"), ("/", "/x", "/x"),
    ])
    func stripPrefix(prefix: String, path: String, expected: String) {
        #expect(LinearRouter.forwardedPath(for: route("r", .prefix(prefix), strip: true), path: path) == expected)
    }

    @Test func noStripKeepsPath() {
        #expect(LinearRouter.forwardedPath(for: route("r", .prefix("/a")), path: "/a/b") == "/a/b")
    }
}
