import Testing

@testable import LoomRouting

/// Reading and removing query parameters by their decoded names.
@Suite struct QueryStringTests {
    @Test(arguments: [
        ("/p?key=1", ["key"], "/p"),
        ("/p?a=1&key=2&b", ["key"], "/p?a=1&b"),
        ("/p?k%65y=2&a&key&key=3", ["key"], "/p?a"),
        ("/p?a=1&b=2", ["a", "b"], "/p"),
        ("/p?keys=1&akey=2", ["key"], "/p?keys=1&akey=2"),
        ("/p", ["key"], "/p"),
        ("/p?", ["key"], "/p?"),
        ("/p?a=%20&&key=1", ["key"], "/p?a=%20&"),
    ])
    func removing(target: String, names: [String], expected: String) {
        #expect(QueryString.removing(names, from: target) == expected)
    }

    @Test func firstValueDecodes() {
        #expect(QueryString.firstValue("api_key", in: "x=1&api%5Fkey=a%20b&api_key=c") == "a b")
        #expect(QueryString.firstValue("y", in: "x=1") == nil)
    }
}
