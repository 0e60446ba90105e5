import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// Authentication filters through a running proxy: JWTs signed by an external signer
/// (Python's `cryptography`, `Fixtures/make_jwts.py`) with RSA, RSA-PSS, P-256, Ed25519 and
/// an HMAC secret, accepted or refused for every reason a token can be wrong; and basic auth
/// against an htpasswd file made by Apache's `htpasswd` (bcrypt and SHA), driven by curl.
extension ProxyE2E {
    @Suite struct AuthE2ETests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        static let secret = "an HMAC secret of at least 32 bytes, for HS256"

        /// Runs the external signer in a fresh directory: `body` gets the key set's path and the
        /// tokens.
        static func withTokens(_ body: (_ jwks: String, _ tokens: [String: String]) async throws -> Void) async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-jwt-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let jwks = directory.appendingPathComponent("jwks.json").path
            let result = try E2E.run("python3", [fixtures.appendingPathComponent("make_jwts.py").path, jwks, secret])
            #expect(result.status == 0, "\(result.stderr)")
            try await body(jwks, try JSONDecoder().decode([String: String].self, from: result.stdout))
        }

        @Test func externallySignedTokensAreAcceptedAndEveryBadOneRefused() async throws {
            try await Self.withTokens { jwks, tokens in
                try await E2E.withBackends(1, dialect: .loomYAML, """
                    upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                    routes:
                      - id: api
                        upstream: app
                        filters:
                          - type: jwt
                            jwks_file: \(jwks)
                            issuer: https://issuer.example
                            audience: [loom-api]
                            leeway: 30s
                            claims_to_headers: {sub: X-User-ID, role: X-Role, n: X-N}
                    """) { _, proxy in
                    for name in ["rs256", "ps256", "es256", "eddsa", "within_leeway"] {
                        // Twice: the first use of a key pauses to fetch its verifier, the second does not.
                        for _ in 0..<2 {
                            let response = try proxy.get("/me", headers: ["Authorization: Bearer \(tokens[name]!)", "X-User-ID: mallory"])
                            #expect(response.status == 200, "\(name): \(response.bodyText)")
                            guard response.status == 200 else { continue }
                            let echoed = try EchoedRequest(response)
                            #expect(echoed.values("x-user-id") == ["user-42"], "\(name): the claim, never the client's own field")
                            #expect(echoed.values("x-role") == ["admin"] && echoed.values("x-n") == ["7"])
                            #expect(!echoed.has("authorization"), "the token is not forwarded")
                        }
                    }
                    let refused = [
                        "expired": "token expired", "early": "token not yet valid", "wrong_audience": "audience not accepted",
                        "wrong_issuer": "issuer not accepted", "unknown_kid": "unknown key id", "wrong_key": "no key for this token",
                        "alg_none": "signature missing", "tampered": "signature does not verify", "hs256": "algorithm not accepted",
                    ]
                    for (name, reason) in refused {
                        let response = try proxy.get("/me", headers: ["Authorization: Bearer \(tokens[name]!)"])
                        #expect(response.status == 401, "\(name)")
                        #expect(response.header("www-authenticate")?.contains(#"error="invalid_token""#) == true, "\(name)")
                        #expect(E2E.json(response)["message"] as? String == "invalid bearer token: \(reason)", "\(name)")
                    }
                    let missing = try proxy.get("/me")
                    #expect(missing.status == 401 && missing.header("www-authenticate") == #"Bearer realm="loom""#)
                    #expect(try proxy.get("/me", headers: ["Authorization: Basic YTpi"]).status == 401)
                }
            }
        }

        @Test func sharedSecretTokensAndForwarding() async throws {
            try await Self.withTokens { _, tokens in
                try await E2E.withBackends(1, dialect: .loomYAML, """
                    upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                    routes: [{id: api, upstream: app, filters: [{type: jwt, secret: "\(Self.secret)", forward_token: true}]}]
                    """) { _, proxy in
                    let accepted = try proxy.get("/me", headers: ["Authorization: bearer \(tokens["hs256"]!)"])
                    #expect(accepted.status == 200)
                    #expect(try EchoedRequest(accepted).values("authorization") == ["bearer \(tokens["hs256"]!)"], "forward_token keeps it")
                    #expect(try proxy.get("/me", headers: ["Authorization: Bearer \(tokens["rs256"]!)"]).status == 401, "only HS256 with a secret")
                }
            }
        }

        @Test func basicAuthWithHtpasswdBcryptAndSHA() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: admin, upstream: app, filters: [{type: basic_auth, realm: Admin area, htpasswd_file: \(Self.fixtures.appendingPathComponent("users.htpasswd").path)}]}]
                """) { _, proxy in
                let url = "http://127.0.0.1:\(proxy.port)/admin"
                for (user, password) in [("alice", "wonder land"), ("alice", "wonder land"), ("bob", "b0b-secret")] {
                    let result = try E2E.curl(["--user", "\(user):\(password)", "--write-out", "%{http_code}", "--output", "/dev/null", url])
                    #expect(String(decoding: result.stdout, as: UTF8.self) == "200", "\(user)")
                }
                for (user, password) in [("alice", "wonderland"), ("bob", "b0b"), ("carol", "wonder land")] {
                    let result = try E2E.curl(["--user", "\(user):\(password)", "--include", url])
                    let text = String(decoding: result.stdout, as: UTF8.self)
                    #expect(text.hasPrefix("HTTP/1.1 401"), "\(user)")
                    #expect(text.contains(#"WWW-Authenticate: Basic realm="Admin area", charset="UTF-8""#), "\(user)")
                }
                #expect(try proxy.get("/admin").status == 401)
            }
        }
    }
}
