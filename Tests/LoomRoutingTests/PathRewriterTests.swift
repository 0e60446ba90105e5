import LoomConfig
import Testing

@testable import LoomRouting

@Suite struct PathRewriterTests {
    static func rewritten(_ rule: PathMatch, _ rewrite: PathRewrite, _ path: String) -> String? {
        var config = route("r", rule)
        config.rewrite = rewrite
        let routers = Routers([config])
        guard case .matched(_, let captures) = routers.match(path) else { return nil }
        return PathRewriter(config)?.apply(to: path, captures: captures)
    }

    /// warpdrive-routing.md: `rewrite = "/new-api"  # /old-api/users → /new-api/users`.
    @Test(arguments: [
        ("/old-api/users", "/new-api/users"), ("/old-api", "/new-api"), ("/old-api/", "/new-api/"), ("/old-api/a/b", "/new-api/a/b"),
    ])
    func prefixRewriteReplacesTheMatchedPrefix(path: String, expected: String) {
        #expect(Self.rewritten(.prefix("/old-api"), .prefix("/new-api"), path) == expected)
        // A trailing slash on the replacement does not double the separator.
        #expect(Self.rewritten(.prefix("/old-api"), .prefix("/new-api/"), path) == (path == "/old-api" ? "/new-api/" : expected))
    }

    @Test func prefixRewriteAfterParameters() {
        #expect(Self.rewritten(pattern("/t/{tenant}/*"), .prefix("/"), "/t/acme/orders") == "/orders")
        #expect(Self.rewritten(pattern("/t/{tenant}/*"), .prefix("/v2"), "/t/acme") == "/v2")
        #expect(Self.rewritten(pattern("/t/{tenant}/*"), .prefix("/tenants/{tenant}"), "/t/acme/orders") == "/tenants/acme/orders")
        // In a regex rewrite, `{name}` is the expression's group, or else the path parameter.
        #expect(Self.rewritten(pattern("/t/{tenant}/*"), .regex(pattern: "^/t/[^/]+/(?<rest>.*)", replacement: "/{tenant}/{rest}"), "/t/acme/a/b")
            == "/acme/a/b")
    }

    @Test(arguments: [
        ("^/users/([0-9]+)/posts", "/posts?user=$1", "/users/42/posts/7", "/posts?user=42/7"),
        ("^/users/(?<id>[0-9]+)", "/u/{id}", "/users/42/x", "/u/42/x"),
        ("/v[0-9]+/", "/", "/api/v2/things", "/api/things"),
        ("^/(a)(b)?", "/$2$1$x", "/ac", "/a$xc"),
        ("^/shop/(.*)$", "store/$1", "/shop/cart", "/store/cart"),
        ("nomatch", "/x", "/shop", "/shop"),
    ])
    func regexRewriteReplacesTheFirstMatch(pattern: String, replacement: String, path: String, expected: String) {
        #expect(Self.rewritten(.prefix("/"), .regex(pattern: pattern, replacement: replacement), path) == expected)
    }

    /// A named group the expression declares stays its own (empty when it took no part); only
    /// a name the expression lacks falls back to the path parameter.
    @Test func declaredGroupsWinOverParameters() {
        #expect(Self.rewritten(pattern("/t/{tenant}/*"), .regex(pattern: "^/t/(?<tenant>x)?[^/]*", replacement: "/[{tenant}]"), "/t/acme/a")
            == "/[]/a")
    }

    @Test func redirectLocations() {
        let captures = { (path: String) -> PathCaptures in
            guard case .matched(_, let captures) = Routers([route("r", pattern("/u/{id}"))]).match(path) else { fatalError() }
            return captures
        }
        let redirect = RouteRedirect(location: "https://x/users/{id}#top")
        #expect(redirect.location(path: "/u/7", captures: captures("/u/7"), names: ["id"], query: "a=1") == "https://x/users/7?a=1#top")
        #expect(RouteRedirect(location: "/n?b=2#f").location(path: "/u/7", captures: captures("/u/7"), names: ["id"], query: "a=1") == "/n?b=2&a=1#f")
        #expect(RouteRedirect(location: "/n").location(path: "/u/7", captures: captures("/u/7"), names: ["id"], query: "") == "/n")
    }

    @Test func templateExpansion() {
        let groups: [PathRewriter.GroupReference: Substring] = [.number(1): "one", .name("n"): "named"]
        func expand(_ template: String) -> String { PathRewriter.expand(template) { groups[$0] } }
        #expect(expand("/a/$1/{n}/$2/$/x$") == "/a/one/named//$/x$")
        #expect(expand("$1$1{missing}") == "oneone")
        #expect(expand("/{unclosed") == "/{unclosed")
        #expect(PathRewrite.templateProblem("/a/{x") != nil)
        #expect(PathRewrite.templateProblem("/a/{}") != nil)
        #expect(PathRewrite.templateProblem("/a/$1/{x}/$") == nil)
    }
}
