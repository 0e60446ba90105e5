import LoomConfig
import Testing

@testable import LoomRouting

func route(
    _ name: String, _ path: PathMatch?, host: String? = nil, methods: [String]? = nil, priority: Int = 0, strip: Bool = false
) -> RouteConfig {
    RouteConfig(
        name: name, priority: priority, match: RouteMatch(path: path, host: host, methods: methods), action: .proxy(upstream: "u"),
        stripPrefix: strip)
}

func pattern(_ text: String) -> PathMatch {
    guard case .success(let pattern) = PathPattern.parse(text) else { fatalError("bad test pattern \(text)") }
    return .pattern(pattern)
}

/// Both routers over the same routes: every lookup asks both and expects the same answer.
struct Routers {
    let linear: LinearRouter
    let compiled: CompiledRouter

    init(_ routes: [RouteConfig]) {
        let ordered = LoomConfiguration(origin: .environment, routes: routes).orderedRoutes
        linear = LinearRouter(orderedRoutes: ordered)
        compiled = CompiledRouter(orderedRoutes: ordered)
    }

    func match(_ path: String, method: String = "GET", host: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> RouteOutcome {
        let expected = linear.match(method: method, host: host, path: path)
        #expect(
            compiled.match(method: method, host: host, path: path) == expected,
            "compiled router disagrees on \(method) \(host ?? "-") \(path)", sourceLocation: sourceLocation)
        return expected
    }

    /// The matched route's name and its parameters as name=value, or nil.
    func matched(_ path: String, method: String = "GET", host: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String? {
        guard case .matched(let index, let captures) = match(path, method: method, host: host, sourceLocation: sourceLocation) else { return nil }
        let names = linear.routes[index].match.path?.segmentPattern?.parameterNames ?? []
        let parameters = names.indices.map { "\(names[$0])=\(captures.value(at: $0, in: path))" }
        return ([linear.routes[index].name] + parameters).joined(separator: " ")
    }
}

@Suite struct RouterTests {
    @Test func firstMatchWinsInFileOrder() {
        let r = Routers([route("cable", .prefix("/cable")), route("all", .prefix("/"))])
        #expect(r.matched("/cable") == "cable")
        #expect(r.matched("/cable/x") == "cable")
        #expect(r.matched("/other") == "all")
    }

    @Test func higherPriorityFirstThenFileOrder() {
        let r = Routers([route("a", .prefix("/")), route("b", .prefix("/"), priority: 5), route("c", .prefix("/"), priority: 5)])
        #expect(r.linear.routes.map(\.name) == ["b", "c", "a"])
        #expect(r.matched("/x") == "b")
        // Priority beats specificity: a more specific later route with lower priority loses.
        let s = Routers([route("catchall", .prefix("/"), priority: 1), route("users", pattern("/users/{id}"))])
        #expect(s.matched("/users/1") == "catchall")
    }

    @Test(arguments: [
        ("/api", "/api", true), ("/api", "/api/", true), ("/api", "/api/users", true),
        ("/api", "/apis", false), ("/api", "/ap", false), ("/", "/anything", true), ("/", "/", true),
        ("/api/", "/api/x", true), ("/api/", "/api/", true), ("/api/", "/api", false),
    ])
    func prefixMatchesAtSegmentBoundary(prefix: String, path: String, expected: Bool) {
        #expect((Routers([route("p", .prefix(prefix))]).matched(path) != nil) == expected)
    }

    @Test func exactPathIsCaseSensitiveAndWhole() {
        let r = Routers([route("health", .exact("/health"))])
        #expect(r.matched("/health") == "health")
        #expect(r.matched("/Health") == nil)
        #expect(r.matched("/health/") == nil)
        #expect(r.matched("/healthz") == nil)
    }

    /// The sibling-route case Loom's Go router lost: both siblings under one parent stay reachable.
    @Test func siblingRoutesBothMatch() {
        let r = Routers([route("users", .prefix("/api/users")), route("posts", .prefix("/api/posts")), route("api", .exact("/api"))])
        #expect(r.matched("/api/users") == "users")
        #expect(r.matched("/api/posts/7") == "posts")
        #expect(r.matched("/api") == "api")
        #expect(r.matched("/api/other") == nil)
    }

    @Test func prefixAndExactOfTheSamePath() {
        let r = Routers([route("prefix", .prefix("/x")), route("exact", .exact("/x"))])
        #expect(r.matched("/x") == "prefix")
        let s = Routers([route("exact", .exact("/x")), route("prefix", .prefix("/x"))])
        #expect(s.matched("/x") == "exact")
        #expect(s.matched("/x/y") == "prefix")
    }

    @Test func parametersCaptureWholeNonEmptySegments() {
        let r = Routers([
            route("items", pattern("/users/{id}/items")),
            route("user", pattern("/users/{id}")),
            route("files", pattern("/files/{owner}/*")),
            route("pair", pattern("/{a}/{b}")),
        ])
        #expect(r.matched("/users/42") == "user id=42")
        #expect(r.matched("/users/42/items") == "items id=42")
        #expect(r.matched("/users/42/items/9") == nil)
        // A parameter needs a non-empty segment: `/users/` is `users` and an empty one.
        #expect(r.matched("/users/") == nil)
        #expect(r.matched("/files/ann") == "files owner=ann")
        #expect(r.matched("/files/ann/a/b.txt") == "files owner=ann")
        #expect(r.matched("/x/y") == "pair a=x b=y")
    }

    @Test func orderDecidesBetweenLiteralAndParameter() {
        // A literal does not win over an earlier parameter route: order decides, as everywhere.
        let r = Routers([route("param", pattern("/users/{id}")), route("me", .exact("/users/me"))])
        #expect(r.matched("/users/me") == "param id=me")
        let s = Routers([route("me", .exact("/users/me")), route("param", pattern("/users/{id}"))])
        #expect(s.matched("/users/me") == "me")
        #expect(s.matched("/users/you") == "param id=you")
    }

    @Test func hostIgnoresPortCaseAndTrailingDot() {
        let r = Routers([route("api", nil, host: "api.example.com"), route("www", nil, host: "www.example.com")])
        #expect(r.matched("/", host: "API.Example.com:8080") == "api")
        #expect(r.matched("/", host: "www.example.com") == "www")
        #expect(r.matched("/", host: "other.example.com") == nil)
        #expect(r.matched("/", host: String?.none) == nil)
        #expect(LinearRouter.stripPort("[::1]:80") == "[::1]")
        #expect(r.matched("/", host: "api.example.com.") == "api")
        #expect(r.matched("/", host: "api.example.com.:443") == "api")
    }

    @Test func wildcardHostMatchesOneOrMoreLabels() {
        let r = Routers([
            route("exact", nil, host: "www.example.com"),
            route("wild", nil, host: "*.Example.com"),
            route("deeper", nil, host: "*.b.example.com"),
            route("v6", nil, host: "[::1]"),
        ])
        #expect(r.matched("/", host: "a.example.com") == "wild")
        #expect(r.matched("/", host: "a.b.example.com:80") == "wild")
        #expect(r.matched("/", host: "www.example.com") == "exact")
        #expect(r.matched("/", host: "example.com") == nil)
        #expect(r.matched("/", host: "xexample.com") == nil)
        #expect(r.matched("/", host: "[::1]:8080") == "v6")
    }

    @Test func methodMismatchIsMethodNotAllowedWithAllow() {
        let r = Routers([
            route("ro", .prefix("/admin"), methods: ["GET", "POST"]),
            route("rw", .prefix("/admin"), methods: ["PUT", "DELETE", "GET"]),
        ])
        #expect(r.matched("/admin/x", method: "PUT") == "rw")
        #expect(r.match("/admin", method: "PATCH") == .methodNotAllowed(allowed: ["DELETE", "GET", "POST", "PUT"]))
        #expect(r.match("/elsewhere", method: "PATCH") == .notFound)
    }

    @Test func pathsWithoutLeadingSlashMatchOnlyRoutesWithoutAPath() {
        let r = Routers([route("all", .prefix("/")), route("exact", .exact("/"))])
        #expect(r.match("*", method: "OPTIONS") == .notFound)
        let s = Routers([route("all", .prefix("/")), route("any", nil)])
        #expect(s.matched("*", method: "OPTIONS") == "any")
        #expect(s.matched("", method: "CONNECT") == "any")
    }

    @Test(arguments: [
        (PathMatch.prefix("/sidekiq"), "/sidekiq/jobs", "/jobs"), (.prefix("/sidekiq"), "/sidekiq", "/"),
        (.prefix("/sidekiq"), "/sidekiq/", "/"), (.prefix("/api/"), "/api/users", "/users"), (.prefix("/"), "/x", "/x"),
        (pattern("/t/{tenant}/*"), "/t/acme/a/b", "/a/b"), (pattern("/t/{tenant}/*"), "/t/acme", "/"),
    ])
    func stripPrefixForwardsWhatFollowsTheMatch(rule: PathMatch, path: String, expected: String) {
        guard case .matched(_, let captures) = Routers([route("r", rule, strip: true)]).match(path) else {
            Issue.record("no match for \(path)")
            return
        }
        #expect(LinearRouter.forwardedPath(path: path, captures: captures) == expected)
    }
}
