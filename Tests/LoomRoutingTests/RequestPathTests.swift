import Testing

@testable import LoomRouting

@Suite struct RequestPathTests {
    @Test(arguments: [
        "/public/../admin", "/./x", "/a/..", "/a/.", "/..", "/a/%2e%2e/b", "/a/%2E./b", "/a/.%2e", "/%2e/x",
    ])
    func dotSegmentsAreFound(path: String) {
        #expect(RequestPath.hasDotSegment(path))
    }

    @Test(arguments: ["/", "/a/b", "/a/.../b", "/.well-known/acme", "/a/..b/c", "/a/b.", "/file.txt", "/a/%2e%2e%2e", "/%2ex", "", "*"])
    func ordinaryPathsPass(path: String) {
        #expect(!RequestPath.hasDotSegment(path))
    }
}
