import LoomHTTP
import Testing

/// What filters and plugins may write into a head loom forwards.
@Suite struct HTTPFieldSyntaxTests {
    @Test(arguments: ["example.com", "api.internal:8443", "127.0.0.1:80", "[::1]:8080", "a-b_c.d~e"])
    func hostsAreAuthorities(_ value: String) {
        #expect(HTTPFieldSyntax.isValidAuthority(value))
    }

    /// Empty, userinfo, a path, spaces, control bytes and non-ASCII bytes are not.
    @Test(arguments: ["", "user@host", "host/path", "a b", "host\r\nx: 1", "hôst", "host?q"])
    func otherValuesAreNot(_ value: String) {
        #expect(!HTTPFieldSyntax.isValidAuthority(value))
    }
}
