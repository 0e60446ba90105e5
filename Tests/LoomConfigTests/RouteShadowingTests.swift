import Testing

@testable import LoomConfig

/// `loom validate` warns about a route an earlier one takes every request from, and only then:
/// the check is conservative, so a warning is never wrong.
@Suite struct RouteShadowingTests {
    @Test func shadowedRoutesAreWarnings() {
        let result = TestSupport.yaml(#"""
            routes:
              - {id: user, path: "/users/{id}", respond: {}}
              - {id: me, path: /users/me, respond: {}}
              - {id: api, path: /api/*, respond: {}}
              - {id: api-v1, path: "/api/v1/{x}/*", methods: [GET], respond: {}}
              - {id: wild, path: /t/*, host: "*.example.com", respond: {}}
              - {id: tenant, path: /t/x, host: A.Example.com, respond: {}}
              - {id: late, path: /late, priority: -1, respond: {}}
              - {id: late-twin, path: /late, respond: {}}
            """#)
        #expect(result.problems == [
            #"t.yaml:3:6 routes[1].id: warning: route "me" can never match: route "user" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
            #"t.yaml:5:6 routes[3].id: warning: route "api-v1" can never match: route "api" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
            #"t.yaml:7:6 routes[5].id: warning: route "tenant" can never match: route "wild" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
            // Priority orders routes: the twin without a priority comes first.
            #"t.yaml:8:6 routes[6].id: warning: route "late" can never match: route "late-twin" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
        ])
        #expect(result.configuration != nil)
    }

    /// A regex path shadows only its identical twin (and anything under a catch-all); a
    /// wildcard host covers the wildcards below it.
    @Test func regexPathsAndWildcardHostsShadowWhenCertain() {
        let result = TestSupport.yaml(#"""
            routes:
              - {id: digits, path_regex: "^/n/[0-9]+$", respond: {}}
              - {id: digits-twin, path_regex: "^/n/[0-9]+$", respond: {}}
              - {id: other-regex, path_regex: "^/n/[0-9]*$", respond: {}}
              - {id: wide, host: "*.example.com", respond: {}}
              - {id: narrow, host: "*.a.example.com", path: /x, respond: {}}
              - {id: all, path: /*, respond: {}}
              - {id: after-all, path_regex: "^/z", respond: {}}
            """#)
        #expect(result.problems == [
            #"t.yaml:3:6 routes[1].id: warning: route "digits-twin" can never match: route "digits" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
            #"t.yaml:6:6 routes[4].id: warning: route "narrow" can never match: route "wide" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
            #"t.yaml:8:6 routes[6].id: warning: route "after-all" can never match: route "all" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
        ])
    }

    /// The same check on WarpDrive TOML.
    @Test func tomlShadowedRoutesAreWarnings() {
        let result = TestSupport.toml(#"""
            [[routes]]
            name = "api"
            path_prefix = "/api"
            respond = { status = 200 }
            [[routes]]
            name = "users"
            path_exact = "/api/users"
            respond = { status = 200 }
            """#)
        #expect(result.problems == [
            #"t.toml:6:1 routes[1].name: warning: route "users" can never match: route "api" comes first and takes every request it would (move it earlier or give it a higher priority)"#,
        ])
    }

    @Test(arguments: [
        // (earlier, later): none of these is shadowing.
        (#"{id: a, path: /users/me, respond: {}}"#, #"{id: b, path: "/users/{id}", respond: {}}"#),
        (#"{id: a, path: "/users/{id}", respond: {}}"#, #"{id: b, path: /users/, respond: {}}"#),
        (#"{id: a, path: /api, respond: {}}"#, #"{id: b, path: /api/*, respond: {}}"#),
        (#"{id: a, path: /api/*, methods: [GET], respond: {}}"#, #"{id: b, path: /api/x, respond: {}}"#),
        (#"{id: a, path: /api/*, headers: [{name: X, value: "1"}], respond: {}}"#, #"{id: b, path: /api/x, respond: {}}"#),
        (#"{id: a, host: "*.example.com", respond: {}}"#, #"{id: b, host: example.com, respond: {}}"#),
        (#"{id: a, host: a.com, respond: {}}"#, #"{id: b, respond: {}}"#),
        (#"{id: a, path: /*, respond: {}}"#, #"{id: b, respond: {}}"#),
    ])
    func overlapsThatAreNotShadowing(earlier: String, later: String) {
        let result = TestSupport.yaml("routes:\n  - \(earlier)\n  - \(later)\n")
        #expect(result.problems == [])
    }

    @Test func regexAndQueryConditionsShadowOnlyWhenCertain() {
        let result = TestSupport.yaml(#"""
            routes:
              - {id: all, path: /*, query: [{name: a, present: true}], respond: {}}
              - {id: regex, path: /x/*, query: [{name: a, present: true}, {name: b, value: "1"}], respond: {}}
              - {id: r1, path: /y/*, respond: {}}
              - {id: r2, path: /y/*, headers: [{name: X, regex: "[0-9]+"}], respond: {}}
            """#)
        #expect(result.problems.count == 2)
        #expect(result.problems.allSatisfy { $0.contains("can never match") })
        #expect(result.problems[0].contains(#"route "regex""#) && result.problems[1].contains(#"route "r2""#))
    }

    /// The router compares values byte for byte, so two spellings of "München" (composed and
    /// decomposed) are different conditions, though Swift's `==` calls them equal.
    @Test func conditionValuesCompareAsBytes() {
        let composed = "M\u{FC}nchen", decomposed = "Mu\u{308}nchen"
        #expect(composed == decomposed)
        let earlier = RouteMatch(query: [FieldCondition(name: "city", test: .equals(composed))])
        let later = RouteMatch(query: [FieldCondition(name: "city", test: .equals(decomposed))])
        #expect(!earlier.covers(later))
        #expect(earlier.covers(RouteMatch(query: [FieldCondition(name: "city", test: .equals(composed))])))
    }
}
