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
}
