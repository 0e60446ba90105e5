import Crypto
import Foundation
import LoomConfig
import Testing

@testable import LoomFilters

/// The pure parts of the authentication filters: token splitting, claim rules, credentials.
@Suite struct AuthFilterTests {
    static func b64(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func tokensSplitAndDecode() throws {
        let token = Self.b64(#"{"alg":"ES256","kid":"k1"}"#) + "." + Self.b64(#"{"sub":"u","n":7,"ok":true,"aud":["a","b"]}"#) + ".c2ln"
        let parsed = try JWTToken(Substring(token))
        #expect(parsed.algorithm == "ES256" && parsed.keyID == "k1")
        #expect(parsed.signature == Array("sig".utf8))
        #expect(parsed.signingInput == Array(token.utf8.dropLast(5)))
        #expect(parsed.claims["n"] == .number(7) && parsed.claims["ok"] == .bool(true))
        #expect(JWTToken.fieldValue(parsed.claims["n"]!) == "7" && JWTToken.fieldValue(parsed.claims["ok"]!) == "true")
        #expect(JWTToken.fieldValue(parsed.claims["aud"]!) == #"["a","b"]"#)
        #expect(JWTToken.fieldValue(.string("a\r\nX-Admin: yes")) == nil, "a claim cannot inject a field")

        let malformed: [(String, String)] = [
            ("a.b", "not a JWS compact serialization (three dot-separated parts)"),
            ("!!." + Self.b64("{}") + ".c2ln", "header is not base64url JSON"),
            (Self.b64(#"{"typ":"JWT"}"#) + "." + Self.b64("{}") + ".c2ln", "header has no alg"),
            (Self.b64(#"{"alg":"HS256","crit":["x"]}"#) + "." + Self.b64("{}") + ".c2ln", "critical header extensions are not supported"),
            (Self.b64(#"{"alg":"HS256","kid":7}"#) + "." + Self.b64("{}") + ".c2ln", "kid is not a string"),
            (Self.b64(#"{"alg":"HS256"}"#) + "." + Self.b64("[1]") + ".c2ln", "payload is not base64url JSON"),
            (Self.b64(#"{"alg":"HS256"}"#) + "." + Self.b64("{}") + ".", "signature missing"),
            (Self.b64(#"{"alg":"HS256"}"#) + "." + Self.b64("{}") + ".c2ln=", "signature is not base64url"),
        ]
        for (text, reason) in malformed {
            #expect(throws: JWTToken.Problem.malformed(reason), "\(text)") { try JWTToken(Substring(text)) }
        }
    }

    @Test func claimRules() {
        func problem(_ claims: [String: JSONValue], issuers: [String] = [], audiences: [String] = [], leeway: Double = 0) -> String? {
            JWTToken.claimsProblem(claims, issuers: issuers, audiences: audiences, leeway: leeway, now: 1000)
        }
        #expect(problem([:]) == nil, "no exp: no expiry")
        #expect(problem(["exp": .number(1000)]) == nil)
        #expect(problem(["exp": .number(999)]) == "token expired")
        #expect(problem(["exp": .number(990)], leeway: 10) == nil)
        #expect(problem(["exp": .string("2030")]) == "exp is not a number")
        #expect(problem(["nbf": .number(1001)]) == "token not yet valid")
        #expect(problem(["nbf": .number(1005)], leeway: 5) == nil)
        #expect(problem(["iss": .string("a")], issuers: ["a", "b"]) == nil)
        #expect(problem([:], issuers: ["a"]) == "issuer not accepted")
        #expect(problem(["aud": .string("api")], audiences: ["api"]) == nil)
        #expect(problem(["aud": .array([.string("x"), .string("api")])], audiences: ["api"]) == nil)
        #expect(problem(["aud": .array([.string("x")])], audiences: ["api"]) == "audience not accepted")
        #expect(problem([:], audiences: ["api"]) == "audience not accepted")
    }

    @Test func bearerAndBasicCredentials() {
        #expect(JWTFilter.bearerToken("Bearer abc") == "abc")
        #expect(JWTFilter.bearerToken("bearer   abc ") == "abc")
        #expect(JWTFilter.bearerToken("Basic abc") == nil && JWTFilter.bearerToken("Bearer") == nil && JWTFilter.bearerToken(nil) == nil)
        let encoded = Data("alice:wonder:land".utf8).base64EncodedString()
        #expect(BasicAuthFilter.credentials("Basic \(encoded)").map { "\($0.user)|\($0.password)" } == "alice|wonder:land")
        #expect(BasicAuthFilter.credentials("basic " + Data("nocolon".utf8).base64EncodedString()) == nil)
        #expect(BasicAuthFilter.credentials("Basic " + Data("a:b\u{0}c".utf8).base64EncodedString()) == nil, "bcrypt would cut at a NUL")
        #expect(BasicAuthFilter.credentials("Basic !!") == nil && BasicAuthFilter.credentials("Bearer x") == nil)
        #expect(BasicAuthFilter.bcryptCost("$2y$12$" + String(repeating: "a", count: 53)) == 12)
        #expect(BasicAuthFilter.bcryptCost("{SHA}x") == nil)
    }

    /// A secret-keyed filter end to end in memory: the first token pauses to make its
    /// verifier, the decision arrives through the resumer; the next is checked at once.
    @Test func hmacTokensVerifyAfterOnePause() async throws {
        let secret = String(repeating: "k", count: 32)
        let filter = JWTFilter(JWTSettings(keys: .secret(secret, algorithm: "HS256"), claimsToHeaders: [.init(claim: "sub", header: "X-User")]), now: { 1000 })
        let signingInput = Self.b64(#"{"alg":"HS256"}"#) + "." + Self.b64(#"{"sub":"u1","exp":2000}"#)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        let signature = Data(mac).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        var request = FilterTest.request("GET", [("Authorization", "Bearer \(signingInput).\(signature)")])
        guard case .pause(let pause) = try filter.onRequestHeaders(&request) else {
            Issue.record("the first use of the key pauses")
            return
        }
        // The decision arrives as a function of the request, to run on the request's loop.
        let next = await withCheckedContinuation { (continuation: CheckedContinuation<@Sendable (inout FilterRequest) throws -> FilterDecision, Never>) in
            pause.start(FilterResumer { next in continuation.resume(returning: next) })
        }
        #expect(try next(&request) == .continue)
        #expect(request.header("x-user") == "u1" && request.header("authorization") == nil)
        var again = FilterTest.request("GET", [("Authorization", "Bearer \(signingInput).\(signature)")])
        #expect(try filter.onRequestHeaders(&again) == .continue, "the verifier is kept")
        var forged = FilterTest.request("GET", [("Authorization", "Bearer \(signingInput).\(signature.dropLast(2))AA")])
        #expect(try filter.onRequestHeaders(&forged) == .reject(filter.invalid("signature does not verify")))
    }
}

/// Credentials sent twice are refused before either is judged: an upstream might read the
/// one the filter did not check.
@Suite struct RepeatedCredentialTests {
    @Test func twoAuthorizationFieldsAreRefused() throws {
        let twice = [("Authorization", "Bearer a.b.c"), ("Authorization", "Bearer d.e.f")]
        let jwt = JWTFilter(JWTSettings(keys: .secret(String(repeating: "k", count: 32), algorithm: "HS256")))
        var request = FilterTest.request("GET", twice)
        #expect(try jwt.onRequestHeaders(&request) == .reject(.repeatedCredentials("Authorization")))
        let basic = BasicAuthFilter(BasicAuthSettings(entries: [.init(user: "bob", hash: "{SHA}lW2ZjsFP+nY11L3OFMUH/UdgUQQ=")]))
        request = FilterTest.request("GET", [("Authorization", "Basic Ym9iOmIwYi1zZWNyZXQ="), ("Authorization", "Basic eDp5")])
        #expect(try basic.onRequestHeaders(&request) == .reject(.repeatedCredentials("Authorization")))
        request = FilterTest.request("GET", [("Authorization", "Basic Ym9iOmIwYi1zZWNyZXQ=")])
        #expect(try basic.onRequestHeaders(&request) == .continue, "bob's {SHA} password")
        let key = APIKeyFilter(APIKeySettings(keys: ["k"]))
        request = FilterTest.request("GET", [("X-API-Key", "k"), ("X-Api-Key", "other")])
        #expect(try key.onRequestHeaders(&request) == .reject(.repeatedCredentials("X-API-Key")))
    }
}
