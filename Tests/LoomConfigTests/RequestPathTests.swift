import Testing

@testable import LoomConfig

@Suite struct RequestPathTests {
    @Test(arguments: [
        "/public/../admin", "/./x", "/a/..", "/a/.", "/..", "/a/%2e%2e/b", "/a/%2E./b", "/a/.%2e", "/%2e/x",
        "//..//admin",
    ])
    func dotSegmentsAreRefused(path: String) {
        #expect(RequestPath.normalized(path) == nil)
    }

    @Test(arguments: [
        ("/", "/"), ("/a/b", "/a/b"), ("/a/.../b", "/a/.../b"), ("/.well-known/acme", "/.well-known/acme"),
        ("/a/..b/c", "/a/..b/c"), ("/file.txt", "/file.txt"), ("*", "*"), ("", ""),
        // Normalized:
        ("//admin/secret", "/admin/secret"), ("/a///b//", "/a/b/"), ("/%61dmin", "/admin"), ("/%7Euser", "/~user"),
        ("/%2e%2e%2e", "/..."),
        // Kept as sent: reserved or invalid escapes.
        ("/a%2Fb", "/a%2Fb"), ("/q%3Fx", "/q%3Fx"), ("/bad%zz", "/bad%zz"), ("/end%4", "/end%4"), ("/sp%20ace", "/sp%20ace"),
    ])
    func normalization(path: String, expected: String) {
        #expect(RequestPath.normalized(path) == expected)
    }
}
