import LoomConfig
import Testing

@testable import LoomRouting

func route(
    _ name: String, _ path: PathMatch?, host: String? = nil, methods: [String]? = nil, headers: [FieldCondition] = [],
    query: [FieldCondition] = [], priority: Int = 0, strip: Bool = false
) -> RouteConfig {
    RouteConfig(
        name: name, priority: priority, match: RouteMatch(path: path, host: host, methods: methods, headers: headers, query: query),
        action: .proxy(upstream: "u"), stripPrefix: strip)
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

    /// `target` is the path with an optional `?query`.
    func match(
        _ target: String, method: String = "GET", host: String? = nil, headers: [(name: String, value: String)] = [],
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> RouteOutcome {
        let (path, query) = Self.split(target)
        let expected = linear.match(method: method, host: host, path: path, query: query, headers: HeaderList(headers))
        #expect(
            compiled.match(method: method, host: host, path: path, query: query, headers: HeaderList(headers)) == expected,
            "compiled router disagrees on \(method) \(host ?? "-") \(target)", sourceLocation: sourceLocation)
        return expected
    }

    static func split(_ target: String) -> (path: String, query: Substring?) {
        guard let question = target.firstIndex(of: "?") else { return (target, nil) }
        return (String(target[..<question]), target[target.index(after: question)...])
    }

    /// The matched route's name and its parameters as name=value, or nil.
    func matched(
        _ target: String, method: String = "GET", host: String? = nil, headers: [(name: String, value: String)] = [],
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> String? {
        let path = Self.split(target).path
        guard case .matched(let index, let captures) = match(target, method: method, host: host, headers: headers, sourceLocation: sourceLocation)
        else { return nil }
        let names = linear.routes[index].parameterNames
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

    /// The compiled router finds the port a word at a time from the end: a colon in every
    /// position of the last words and of the bytes before them gives what `stripPort` gives.
    @Test func bareHostRangeAgreesWithStripPort() {
        var hosts = ["", ":", "a", "a:", ":1", "::1", "a:b:c", "[::1]", "[::1]:80", "[::1", "host.", "host.:80", "x.example.com."]
        for length in 1...26 {
            for colon in 0..<length {
                var bytes = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
                bytes[colon] = UInt8(ascii: ":")
                if colon > 0 { bytes[colon - 1] = UInt8(ascii: ".") }
                hosts.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        for host in hosts {
            let bare = Array(host.utf8).withUnsafeBufferPointer { String(decoding: $0[CompiledRouter.bareHostRange($0)], as: UTF8.self) }
            #expect(bare == LinearRouter.stripPort(host), "\(host)")
        }
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

    /// warpdrive-routing.md's header example: the same path, two upstreams by `X-API-Version`.
    @Test func headerConditions() {
        let r = Routers([
            route("v2", nil, headers: [FieldCondition(name: "X-API-Version", test: .equals("v2"))]),
            route("v1", nil, headers: [FieldCondition(name: "x-api-version", test: .equals("v1"))]),
            route("beta", .prefix("/beta"), headers: [FieldCondition(name: "X-Beta", test: .present)]),
            route("canary", nil, headers: [FieldCondition(name: "X-Canary", test: .matches("[a-f0-9]{4}"))]),
            route("anonymous", .prefix("/me"), headers: [FieldCondition(name: "Authorization", test: .absent)]),
        ])
        #expect(r.matched("/", headers: [("X-Api-Version", "v2")]) == "v2")
        #expect(r.matched("/", headers: [("x-api-version", "v1")]) == "v1")
        // Values compare exactly; any one of several fields may match.
        #expect(r.matched("/", headers: [("X-API-Version", "V2")]) == nil)
        #expect(r.matched("/", headers: [("X-API-Version", "v3"), ("X-API-Version", "v1")]) == "v1")
        #expect(r.matched("/beta/x", headers: [("x-beta", "")]) == "beta")
        #expect(r.matched("/beta/x") == nil)
        // A regular expression must match the whole value.
        #expect(r.matched("/", headers: [("X-Canary", "beef")]) == "canary")
        #expect(r.matched("/", headers: [("X-Canary", "beefy")]) == nil)
        #expect(r.matched("/me") == "anonymous")
        #expect(r.matched("/me", headers: [("Authorization", "Bearer x")]) == nil)
    }

    @Test func queryConditionsArePercentDecoded() {
        let r = Routers([
            route("search", .exact("/s"), query: [FieldCondition(name: "q", test: .equals("a b")), FieldCondition(name: "debug", test: .absent)]),
            route("page", .exact("/s"), query: [FieldCondition(name: "page", test: .matches("[0-9]+"))]),
            route("flag", .exact("/s"), query: [FieldCondition(name: "my flag", test: .present)]),
        ])
        #expect(r.matched("/s?q=a%20b") == "search")
        #expect(r.matched("/s?x=1&q=a%20b&y") == "search")
        #expect(r.matched("/s?q=a+b") == nil)
        #expect(r.matched("/s?q=a%20b&debug") == nil)
        #expect(r.matched("/s?page=12") == "page")
        #expect(r.matched("/s?page=12a") == nil)
        #expect(r.matched("/s?my%20flag") == "flag")
        #expect(r.matched("/s?%zz=1") == nil)
        #expect(r.matched("/s") == nil)
    }

    /// `path_regex` matches from the start of the path; warpdrive-routing.md's example.
    @Test func regexPathsMatchFromTheStart() {
        let r = Routers([
            route("posts", .regex("^/users/[0-9]+/posts")),
            route("unanchored", .regex("/v[0-9]+/")),
            route("whole", .regex("/exact$")),
            route("all", .prefix("/"), methods: ["GET"]),
        ])
        #expect(r.matched("/users/42/posts") == "posts")
        #expect(r.matched("/users/42/posts/7") == "posts")
        #expect(r.matched("/users/x/posts") == "all")
        #expect(r.matched("/v2/things") == "unanchored")
        #expect(r.matched("/api/v2/things") == "all")
        #expect(r.matched("/exact") == "whole")
        #expect(r.matched("/exact/no") == "all")
        #expect(r.match("/exact/no", method: "POST") == .methodNotAllowed(allowed: ["GET"]))
        #expect(r.match("*", method: "OPTIONS") == .notFound)
        // Order across regex and trie routes is the configured order.
        let s = Routers([route("all", .prefix("/")), route("posts", .regex("^/users/[0-9]+/posts"))])
        #expect(s.matched("/users/42/posts") == "all")
    }

    @Test func conditionsDecideBeforeMethodsFor405() {
        let r = Routers([
            route("v2-write", .prefix("/api"), methods: ["POST"], headers: [FieldCondition(name: "X-V", test: .equals("2"))]),
            route("read", .prefix("/api"), methods: ["GET"]),
        ])
        // The header-conditioned route does not take part unless its header matches.
        #expect(r.match("/api", method: "POST") == .methodNotAllowed(allowed: ["GET"]))
        #expect(r.matched("/api", method: "POST", headers: [("X-V", "2")]) == "v2-write")
        #expect(r.match("/api", method: "PUT", headers: [("X-V", "2")]) == .methodNotAllowed(allowed: ["GET", "POST"]))
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
        #expect(PathRewriter(route("r", rule, strip: true))?.apply(to: path, captures: captures) == expected)
    }
}
