import Testing

@testable import LoomConfig

/// Header and query conditions: the same list syntax in both dialects, WarpDrive's single
/// `header` table, and a specific error for each mistake.
@Suite struct RouteConditionConfigTests {
    @Test func yamlHeadersAndQueryDecode() throws {
        let result = TestSupport.yaml(#"""
            routes:
              - id: v2
                path: /api/*
                headers:
                  - {name: X-API-Version, value: v2}
                  - {name: X-Beta, present: true}
                  - {name: Authorization, present: false}
                  - {name: X-Canary, regex: "[a-f0-9]{4}"}
                query:
                  - {name: debug, present: true}
                  - {name: page, regex: "[0-9]+"}
                respond: {status: 200}
            """#)
        #expect(result.problems == [])
        let match = try #require(result.configuration?.routes.first?.match)
        #expect(match.headers == [
            FieldCondition(name: "X-API-Version", test: .equals("v2")), FieldCondition(name: "X-Beta", test: .present),
            FieldCondition(name: "Authorization", test: .absent), FieldCondition(name: "X-Canary", test: .matches("[a-f0-9]{4}")),
        ])
        #expect(match.query == [FieldCondition(name: "debug", test: .present), FieldCondition(name: "page", test: .matches("[0-9]+"))])
    }

    @Test func tomlHeaderTableAndLists() throws {
        let result = TestSupport.toml(#"""
            [[routes]]
            header = { name = "X-API-Version", value = "v2" }
            headers = [{ name = "X-Beta", present = true }]
            query = [{ name = "q", value = "a b" }]
            respond = { status = 200 }
            [[routes]]
            path_regex = "^/users/[0-9]+/posts"
            respond = { status = 200 }
            """#)
        #expect(result.problems == [])
        let routes = try #require(result.configuration?.routes)
        #expect(routes[0].match.headers == [FieldCondition(name: "X-API-Version", test: .equals("v2")), FieldCondition(name: "X-Beta", test: .present)])
        #expect(routes[0].match.query == [FieldCondition(name: "q", test: .equals("a b"))])
        #expect(routes[1].match.path == .regex("^/users/[0-9]+/posts"))
    }

    @Test func conditionMistakesAreErrors() {
        let result = TestSupport.yaml(#"""
            routes:
              - id: a
                headers:
                  - {name: "X Bad", value: v}
                  - {value: v}
                  - {name: X-A}
                  - {name: X-B, value: v, present: true}
                  - {name: X-C, regex: "(unclosed"}
                  - {name: X-D, vaule: v}
                query:
                  - {name: "", value: v}
                  - {name: q, present: maybe}
                respond: {status: 200}
            """#)
        #expect(result.problems == [
            #"t.yaml:4:16 routes[0].headers[0].name: invalid header name "X Bad""#,
            #"t.yaml:5:9 routes[0].headers[1]: missing required key "name""#,
            #"t.yaml:6:9 routes[0].headers[2]: a header condition needs one of "value", "present" and "regex""#,
            #"t.yaml:7:9 routes[0].headers[3]: only one of "value", "present" and "regex" may be set"#,
            #"t.yaml:8:28 routes[0].headers[4].regex: invalid regular expression "(unclosed": expected ')'"#,
            #"t.yaml:9:9 routes[0].headers[5]: a header condition needs one of "value", "present" and "regex""#,
            #"t.yaml:9:21 routes[0].headers[5].vaule: unknown key "vaule" (did you mean "value"?)"#,
            #"t.yaml:11:16 routes[0].query[0].name: query parameter name must not be empty"#,
            #"t.yaml:12:28 routes[0].query[1].present: expected a boolean, got "maybe""#,
        ])
    }

    @Test func rewritesInBothDialects() throws {
        let yaml = TestSupport.yaml(#"""
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - {id: a, path: /old-api/*, rewrite: /new-api, upstream: u}
              - id: b
                path: "/users/{id}"
                rewrite: {regex: "^/users/([0-9]+)", replacement: "/u/$1"}
                upstream: u
            """#)
        #expect(yaml.problems == [])
        #expect(try #require(yaml.configuration).routes.map(\.rewrite) == [.prefix("/new-api"), .regex(pattern: "^/users/([0-9]+)", replacement: "/u/$1")])
        let toml = TestSupport.toml(#"""
            [upstreams.u]
            host = "127.0.0.1"
            port = 1
            [[routes]]
            path_prefix = "/old-api"
            rewrite = "/new-api"
            upstream = "u"
            [[routes]]
            rewrite = { regex = "^/shop/(?<rest>.*)", replacement = "/store/{rest}" }
            upstream = "u"
            """#)
        #expect(toml.problems == [])
        #expect(try #require(toml.configuration).routes.map(\.rewrite) == [.prefix("/new-api"), .regex(pattern: "^/shop/(?<rest>.*)", replacement: "/store/{rest}")])
    }

    @Test func rewriteMistakesAreErrors() {
        let result = TestSupport.yaml(#"""
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - {id: a, path: /x/*, rewrite: new, upstream: u}
              - {id: b, path: /x/*, rewrite: /y, strip_prefix: true, upstream: u}
              - {id: c, path: /x, rewrite: /y, upstream: u}
              - {id: d, rewrite: {regex: "(", replacement: /y}, upstream: u}
              - {id: e, rewrite: {regex: "x", replacement: "/{x"}, upstream: u}
              - {id: f, rewrite: {regex: "x"}, upstream: u}
              - {id: g, path: "/t/{tenant}/*", rewrite: "/x/{tenat}", upstream: u}
            """#)
        #expect(result.problems == [
            #"t.yaml:3:34 routes[0].rewrite: rewrite "new" must start with "/""#,
            #"t.yaml:4:25 routes[1].rewrite: rewrite and strip_prefix cannot both be set (strip_prefix is rewrite "/")"#,
            #"t.yaml:5:23 routes[2].rewrite: a prefix rewrite needs a prefix path ("/x/*", "/x/{id}/*" or path_prefix); use {regex, replacement} otherwise"#,
            #"t.yaml:6:30 routes[3].rewrite.regex: invalid regular expression "(": expected ')'"#,
            #"t.yaml:7:48 routes[4].rewrite.replacement: replacement "/{x": "{" without "}" (write a named group as "{name}")"#,
            #"t.yaml:8:22 routes[5].rewrite: missing required key "replacement""#,
            #"t.yaml:9:36 routes[6].rewrite: rewrite uses {tenat}, which is not a parameter of the route's path"#,
        ])
    }

    @Test func headerRulesInBothDialects() throws {
        let yaml = TestSupport.yaml(#"""
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - id: a
                upstream: u
                set_headers: {X-Tenant: acme}
                remove_headers: [Cookie]
                add_response_headers: [{name: X-Frame-Options, value: DENY}]
                set_response_headers: {Cache-Control: no-store}
                remove_response_headers: [Server]
            """#)
        #expect(yaml.problems == [])
        let route = try #require(yaml.configuration?.routes.first)
        #expect(route.requestHeaders == HeaderRules(set: [HeaderPair(name: "X-Tenant", value: "acme")], remove: ["Cookie"]))
        #expect(route.responseHeaders == HeaderRules(
            add: [HeaderPair(name: "X-Frame-Options", value: "DENY")], set: [HeaderPair(name: "Cache-Control", value: "no-store")], remove: ["Server"]))
        let toml = TestSupport.toml(#"""
            [upstreams.u]
            host = "127.0.0.1"
            port = 1
            [[routes]]
            upstream = "u"
            add_headers = [{ name = "X-Backend", value = "api" }]
            remove_response_headers = ["Server"]
            """#)
        #expect(toml.problems == [])
        #expect(try #require(toml.configuration).routes[0].responseHeaders.remove == ["Server"])
        #expect(try #require(toml.configuration).routes[0].addRequestHeaders == [HeaderPair(name: "X-Backend", value: "api")])
    }

    @Test func headerRulesCannotTouchWhatLoomManages() {
        let result = TestSupport.yaml(#"""
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - id: a
                upstream: u
                remove_headers: [Host, "bad name"]
                set_response_headers: {Content-Length: "1", X-Request-ID: x}
            """#)
        #expect(result.problems == [
            #"t.yaml:5:22 routes[0].remove_headers[0]: header "Host" is managed by loom and cannot be set here"#,
            #"t.yaml:5:28 routes[0].remove_headers[1]: invalid header name "bad name""#,
            #"t.yaml:6:28 routes[0].set_response_headers.Content-Length: header "Content-Length" is managed by loom and cannot be set here"#,
            #"t.yaml:6:49 routes[0].set_response_headers.X-Request-ID: header "X-Request-ID" is the request id header (server.forwarding.request_id_header), which loom sets itself"#,
        ])
    }

    @Test func redirectsInBothDialects() throws {
        let yaml = TestSupport.yaml(#"""
            routes:
              - {id: a, path: "/u/{id}", redirect: {location: "https://new.example.com/users/{id}", status: 308}}
              - {id: b, path: /old, redirect: {location: /new}}
            """#)
        #expect(yaml.problems == [])
        #expect(try #require(yaml.configuration).routes.map(\.action) == [
            .redirect(RouteRedirect(location: "https://new.example.com/users/{id}", status: 308)), .redirect(RouteRedirect(location: "/new")),
        ])
        let toml = TestSupport.toml(#"""
            [[routes]]
            path_prefix = "/blog"
            redirect = { location = "https://blog.example.com/", status = 302 }
            """#)
        #expect(toml.problems == [])
        #expect(try #require(toml.configuration).routes[0].action == .redirect(RouteRedirect(location: "https://blog.example.com/", status: 302)))
    }

    @Test func redirectMistakesAreErrors() {
        let result = TestSupport.yaml(#"""
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - {id: a, path: /x, redirect: {location: /y, status: 200}}
              - {id: b, path: "/u/{id}", redirect: {location: "/v/{name}"}}
              - {id: c, path: /z, redirect: {location: "a b"}}
              - {id: d, path: /w, upstream: u, redirect: {location: /q}}
              - {id: e, path: /v, redirect: {status: 301}}
            """#)
        #expect(result.problems == [
            #"t.yaml:3:56 routes[0].redirect.status: redirect status 200 must be 301, 302, 303, 307 or 308"#,
            #"t.yaml:4:30 routes[1].redirect: redirect location uses {name}, which is not a parameter of the route's path"#,
            #"t.yaml:5:44 routes[2].redirect.location: redirect location "a b" must be a URL or path without spaces or control characters"#,
            #"t.yaml:6:36 routes[3].redirect: "upstream" and "redirect" cannot both be set"#,
            #"t.yaml:7:33 routes[4].redirect: missing required key "location""#,
        ])
    }

    @Test func settingsThatNeedAnUpstreamAreRefusedElsewhere() {
        let result = TestSupport.yaml(#"""
            routes:
              - {id: a, path: /a/*, respond: {}, strip_prefix: true, timeouts: {connect: 1s}}
              - {id: b, path: /b, redirect: {location: /c}, add_response_headers: {X-A: "1"}}
            """#)
        #expect(result.problems == [
            #"t.yaml:2:38 routes[0].strip_prefix: strip_prefix has no effect on a respond route (it applies to what is sent to an upstream)"#,
            #"t.yaml:2:58 routes[0].timeouts: a timeout has no effect on a respond route (it applies to what is sent to an upstream)"#,
            #"t.yaml:3:72 routes[1].add_response_headers.X-A: add_response_headers has no effect on a redirect route (it applies to what is sent to an upstream)"#,
        ])
    }

    @Test func rewriteTextAndConditionValuesThatCouldNeverWorkAreErrors() {
        let result = TestSupport.yaml(#"""
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - {id: a, path: /a/*, upstream: u, rewrite: "/x y"}
              - {id: b, path: /b/*, upstream: u, rewrite: "/x?y=1"}
              - {id: c, upstream: u, rewrite: {regex: "^/c", replacement: "/c#frag"}}
              - {id: d, upstream: u, headers: [{name: X-A, value: " padded"}]}
              - {id: e, upstream: u, host: "."}
            """#)
        #expect(result.problems == [
            #"t.yaml:3:47 routes[0].rewrite: rewrite "/x y" must be visible ASCII, without spaces or control characters (percent-encode the others, e.g. "%20")"#,
            #"t.yaml:4:47 routes[1].rewrite: rewrite "/x?y=1" must not contain "?": the query is forwarded as sent (use {regex, replacement} to add one)"#,
            ##"t.yaml:5:63 routes[2].rewrite.replacement: replacement "/c#frag" must not contain "#" (write "%23")"##,
            #"t.yaml:6:55 routes[3].headers[0].value: header value " padded" never matches: header values are compared without surrounding spaces"#,
            #"t.yaml:7:32 routes[4].host: invalid host ".""#,
        ])
    }

    @Test func consistentHashKeys() throws {
        let result = TestSupport.yaml(#"""
            upstreams:
              - {name: a, endpoints: ["127.0.0.1:1"], load_balancer: consistent_hash, consistent_hash: {hash_key: "header:X-User"}}
              - {name: b, endpoints: ["127.0.0.1:1"], load_balancer: consistent_hash, consistent_hash: {hash_key: "cookie:session"}}
              - {name: c, endpoints: ["127.0.0.1:1"], load_balancer: consistent_hash, consistent_hash: {hash_key: path}}
              - {name: d, endpoints: ["127.0.0.1:1"], load_balancer: consistent_hash}
              - {name: e, endpoints: ["127.0.0.1:1"], load_balancer: random}
              - {name: f, endpoints: ["127.0.0.1:1"], load_balancer: random, consistent_hash: {hash_key: client_ip}}
              - {name: g, endpoints: ["127.0.0.1:1"], load_balancer: consistent_hash, consistent_hash: {hash_key: clientip}}
              - {name: h, endpoints: ["127.0.0.1:1"], consistent_hash: {}}
            """#)
        #expect(result.problems == [
            #"t.yaml:7:66 upstreams[5].consistent_hash: consistent_hash has no effect unless the load balancer is consistent_hash"#,
            #"t.yaml:8:103 upstreams[6].consistent_hash.hash_key: unknown hash key "clientip" (did you mean "client_ip"?)"#,
            #"t.yaml:9:43 upstreams[7].consistent_hash: consistent_hash has no effect unless the load balancer is consistent_hash"#,
        ])
        let upstreams = try #require(result.configuration).upstreams
        #expect(upstreams.prefix(5).map(\.hashKey) == [.header("X-User"), .cookie("session"), .path, nil, nil])
        let toml = TestSupport.toml(#"""
            [upstreams.app]
            strategy = "consistent_hash"
            consistent_hash = { hash_key = "client_ip" }
            [[upstreams.app.instances]]
            socket = "/tmp/a.sock"
            """#)
        #expect(toml.problems == [])
        #expect(try #require(toml.configuration).upstreams[0].hashKey == .clientIP)
    }

    @Test func endpointWeightsAndBackups() throws {
        let result = TestSupport.yaml(#"""
            upstreams:
              - name: a
                load_balancer: weighted
                endpoints:
                  - "127.0.0.1:1"
                  - {address: "127.0.0.1:2", weight: 3}
                  - {address: "unix:/tmp/x.sock", backup: true}
                  - {weight: 2}
                  - {address: "127.0.0.1:3", weight: 0}
            """#)
        #expect(result.problems == [
            #"t.yaml:8:9 upstreams[0].endpoints[3]: missing required key "address""#,
            #"t.yaml:9:42 upstreams[0].endpoints[4].weight: must be between 1 and 1000, got 0"#,
        ])
        let upstream = try #require(result.configuration?.upstreams.first)
        #expect(upstream.weights == [1, 3, 1, 1])
        #expect(upstream.endpointOptions[2] == EndpointOptions(backup: true))
        let toml = TestSupport.toml(#"""
            [upstreams.rails]
            strategy = "least_conn"
            [[upstreams.rails.instances]]
            socket = "/tmp/puma.0.sock"
            weight = 2
            [[upstreams.rails.instances]]
            socket = "/tmp/puma.1.sock"
            """#)
        #expect(toml.problems == [])
        #expect(try #require(toml.configuration).upstreams[0].weights == [2, 1])
        var built = UpstreamConfig(name: "x", endpoints: [.tcp(host: "a", port: 1)])
        built.endpointOptions = [EndpointOptions(weight: 0), EndpointOptions()]
        let messages = ConfigValidator.validate(LoomConfiguration(origin: .environment, upstreams: [built]), sourceMap: ConfigSourceMap(file: "mem"))
            .map(\.description)
        #expect(messages.contains("mem: 2 endpoint options for 1 endpoints"))
        #expect(messages.contains("mem: weight 0 must be between 1 and 1000"))
    }
}
