import Testing

@testable import LoomConfig

/// Route paths must be able to match: requests are routed by `RequestPath.normalized(path)`
/// with the query removed, so a literal route path with a query, a fragment, spaces, a
/// backslash, dot segments or any other non-normalized spelling is an error that says what
/// to write instead. The literal parts of `{param}` patterns obey the same rules; regex paths
/// only get the character checks that are not their own syntax.
@Suite struct RoutePathConfigTests {
    @Test func yamlPathsThatCouldNeverMatchAreErrors() {
        let result = TestSupport.yaml(#"""
            routes:
              - id: query
                path: "/search?q=x"
                respond: {status: 200}
              - id: fragment
                path: "/page#top"
                respond: {status: 200}
              - id: space
                path: "/a b"
                respond: {status: 200}
              - id: backslash
                path: '/a\b'
                respond: {status: 200}
              - id: dots
                path: /public/../admin
                respond: {status: 200}
              - id: escaped
                path: /%61dmin
                respond: {status: 200}
              - id: slashes
                path: //api/*
                respond: {status: 200}
              - id: dot-prefix
                path: /static/./img/*
                respond: {status: 200}
              - id: tab
                path: "/a\tb/*"
                respond: {status: 200}
              - id: pattern-fragment
                path: "/users/{id}#x"
                respond: {status: 200}
            """#)
        #expect(result.problems == [
            #"t.yaml:3:11 routes[0].path: route path "/search?q=x" must not contain "?" (routes match the path without its query; write "%3F" for a literal "?")"#,
            ##"t.yaml:6:11 routes[1].path: route path "/page#top" must not contain "#" (fragments are never sent to the server; write "%23" for a literal "#")"##,
            #"t.yaml:9:11 routes[2].path: route path "/a b" must not contain spaces or control characters (write a space as "%20")"#,
            #"t.yaml:12:11 routes[3].path: route path "/a\b" must not contain "\" (clients send it as "%5C"; write that instead)"#,
            #"t.yaml:15:11 routes[4].path: route path "/public/../admin" has "." or ".." segments, which loom refuses in requests (400); write "/admin""#,
            #"t.yaml:18:11 routes[5].path: route path "/%61dmin" is not in normalized form; write "/admin""#,
            #"t.yaml:21:11 routes[6].path: route path "//api/*" is not in normalized form; write "/api/*""#,
            #"t.yaml:24:11 routes[7].path: route path "/static/./img/*" has "." or ".." segments, which loom refuses in requests (400); write "/static/img/*""#,
            #"t.yaml:27:11 routes[8].path: route path "/a\u{9}b/*" must not contain spaces or control characters (write a space as "%20")"#,
            ##"t.yaml:30:11 routes[9].path: route path "/users/{id}#x" must not contain "#" (fragments are never sent to the server; write "%23" for a literal "#")"##,
        ])
    }

    @Test func yamlNormalizedPathsAndPatternsAreAccepted() throws {
        let result = TestSupport.yaml(#"""
            routes:
              - {id: a, path: /.well-known/acme, respond: {}}
              - {id: b, path: "/a%2Fb/*", respond: {}}
              - {id: c, path: /~user, respond: {}}
              - {id: e, path: /api/, respond: {}}
              - {id: f, path: "/files/%20x", respond: {}}
              - {id: g, path: "/users/{id}/*", respond: {}}
              - {id: h, path: "/{tenant}/items/{item_2}", respond: {}}
              - {id: d, path: /*, respond: {}}
            """#)
        #expect(result.problems == [])
        let paths = try #require(result.configuration).routes.map(\.match.path)
        #expect(paths == [
            .exact("/.well-known/acme"), .prefix("/a%2Fb"), .exact("/~user"), .exact("/api/"),
            .exact("/files/%20x"), .pattern(PathPattern(segments: [.literal("users"), .parameter("id")], tail: .any)),
            .pattern(PathPattern(segments: [.parameter("tenant"), .literal("items"), .parameter("item_2")], tail: .end)), .prefix("/"),
        ])
        #expect(paths[6]?.segmentPattern?.description == "/{tenant}/items/{item_2}")
    }

    @Test func yamlPatternMistakesAreErrors() {
        let result = TestSupport.yaml(#"""
            routes:
              - {id: a, path: "//users/{id}", respond: {}}
              - {id: b, path: "/files/{name}.txt", respond: {}}
              - {id: c, path: "/x/{1st}", respond: {}}
              - {id: d, path: "/{a}/{a}", respond: {}}
              - {id: e, path: "/x/*/{id}", respond: {}}
              - {id: f, path: "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", respond: {}}
              - {id: g, path: "/u/{}", respond: {}}
              - {id: h, path: "/u/{id}/../x/*", respond: {}}
            """#)
        #expect(result.problems == [
            #"t.yaml:2:19 routes[0].path: route path "//users/{id}" is not in normalized form; write "/users/{id}""#,
            #"t.yaml:3:19 routes[1].path: invalid path "/files/{name}.txt": segment "{name}.txt" mixes text and a parameter; a parameter is a whole segment ("/x/{name}")"#,
            #"t.yaml:4:19 routes[2].path: invalid path "/x/{1st}": parameter name "1st" must be letters, digits and "_", not starting with a digit"#,
            #"t.yaml:5:19 routes[3].path: invalid path "/{a}/{a}": parameter "a" appears twice"#,
            #"t.yaml:6:19 routes[4].path: invalid path "/x/*/{id}": "*" is only allowed as the final "/*""#,
            #"t.yaml:7:19 routes[5].path: invalid path "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}": 9 parameters; at most 8 are allowed"#,
            #"t.yaml:8:19 routes[6].path: invalid path "/u/{}": parameter name "" must be letters, digits and "_", not starting with a digit"#,
            #"t.yaml:9:19 routes[7].path: route path "/u/{id}/../x/*" has "." or ".." segments, which loom refuses in requests (400); write "/u/x/*""#,
        ])
    }

    /// `path_regex` in Loom YAML, as in WarpDrive TOML: compiled at load, only the character
    /// checks that are not regex syntax, and never together with `path`.
    @Test func yamlPathRegex() throws {
        let good = TestSupport.yaml(#"""
            routes:
              - {id: json, path_regex: '^/users/[0-9]+\.json$', respond: {}}
            """#)
        #expect(good.problems == [])
        #expect(try #require(good.configuration).routes.map(\.match.path) == [.regex(#"^/users/[0-9]+\.json$"#)])
        let bad = TestSupport.yaml(#"""
            routes:
              - {id: a, path_regex: "^/a b", respond: {}}
              - {id: b, path_regex: "^/(", respond: {}}
              - {id: c, path: /c, path_regex: "^/c", respond: {}}
            """#)
        #expect(bad.problems.count == 3)
        #expect(bad.problems.first == #"t.yaml:2:25 routes[0].path_regex: route path "^/a b" must not contain spaces or control characters (write a space as "%20")"#)
        #expect(bad.problems.dropFirst().first?.hasPrefix("t.yaml:3:25 routes[1].path_regex: ") == true)
        #expect(bad.problems.last == #"t.yaml:4:35 routes[2].path_regex: only one of "path" and "path_regex" may be set"#)
    }

    @Test func tomlPathPrefixAndExactFollowTheSameRules() {
        let result = TestSupport.toml(#"""
            [[routes]]
            path_prefix = "/api?v=1"
            respond = { status = 200 }
            [[routes]]
            path_exact = "/a/../b"
            respond = { status = 200 }
            [[routes]]
            path_prefix = "//api"
            respond = { status = 200 }
            [[routes]]
            path_regex = "^/a b"
            respond = { status = 200 }
            [[routes]]
            path_regex = '^/users/[0-9]+/?\.json$'
            respond = { status = 200 }
            [[routes]]
            path_exact = "/%7Euser"
            respond = { status = 200 }
            [[routes]]
            path_prefix = '/a\b'
            respond = { status = 200 }
            [[routes]]
            path_prefix = "/x/.."
            respond = { status = 200 }
            """#)
        #expect(result.problems == [
            #"t.toml:2:15 routes[0].path_prefix: route path "/api?v=1" must not contain "?" (routes match the path without its query; write "%3F" for a literal "?")"#,
            #"t.toml:5:14 routes[1].path_exact: route path "/a/../b" has "." or ".." segments, which loom refuses in requests (400); write "/b""#,
            #"t.toml:8:15 routes[2].path_prefix: route path "//api" is not in normalized form; write "/api""#,
            #"t.toml:11:14 routes[3].path_regex: route path "^/a b" must not contain spaces or control characters (write a space as "%20")"#,
            #"t.toml:17:14 routes[5].path_exact: route path "/%7Euser" is not in normalized form; write "/~user""#,
            #"t.toml:20:15 routes[6].path_prefix: route path "/a\b" must not contain "\" (clients send it as "%5C"; write that instead)"#,
            #"t.toml:23:15 routes[7].path_prefix: route path "/x/.." has "." or ".." segments, which loom refuses in requests (400); write "/""#,
        ])
    }

    @Test(arguments: [
        ("/public/../admin", "/admin"), ("/a/.", "/a/"), ("/a/..", "/"), ("/./x", "/x"), ("/a/%2e%2e/b", "/b"),
        ("//..//admin", "/admin"), ("/%61/./b/", "/a/b/"), ("/..", "/"),
    ])
    func dotSegmentSuggestions(path: String, resolved: String) {
        #expect(RequestPath.normalized(path) == nil)
        #expect(RequestPath.removingDotSegments(path) == resolved)
        #expect(RequestPath.normalized(resolved) == resolved)
    }
}
