import Foundation
import Testing

@testable import LoomConfig

/// `filters` lists (global and per route), the top-level `cors` section, and their errors.
@Suite struct FilterConfigTests {
    @Test func globalAndRouteFiltersInBothDialects() throws {
        let yaml = TestSupport.yaml("""
            cors: {allow_origins: ["https://app.example.com"]}
            filters:
              - {type: security_headers, hsts: {max_age: 1h, include_subdomains: true}, frame_options: sameorigin, referrer_policy: false}
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes:
              - {id: admin, path: /admin, upstream: u, filters: [{type: ip_filter, allow: ["10.0.0.0/8", "::1"]}]}
            """)
        #expect(yaml.problems == [])
        let config = try #require(yaml.configuration)
        #expect(config.filters.map(\.type) == ["cors", "security_headers"], "the cors section comes first")
        #expect(config.filters[1] == FilterConfig(.securityHeaders(SecurityHeadersSettings(
            hsts: .init(maxAge: .seconds(3600), includeSubdomains: true), frameOptions: "SAMEORIGIN", referrerPolicy: nil))))
        #expect(config.routes[0].filters == [FilterConfig(.ipFilter(IPFilterSettings(allow: [AddressBlock("10.0.0.0/8")!, AddressBlock("::1")!])))])

        let toml = TestSupport.toml("""
            [[filters]]
            type = "security_headers"
            hsts = true
            [upstreams.u]
            host = "127.0.0.1"
            port = 1
            [[routes]]
            path_prefix = "/"
            upstream = "u"
            filters = [{ type = "ip_filter", deny = ["192.0.2.0/24"] }]
            """)
        #expect(toml.problems == [])
        let tomlConfig = try #require(toml.configuration)
        #expect(tomlConfig.filters == [FilterConfig(.securityHeaders(SecurityHeadersSettings(hsts: .init())))])
        #expect(tomlConfig.routes[0].filters.map(\.type) == ["ip_filter"])
    }

    @Test func corsMistakesThatWouldOpenOrBreakIt() {
        let result = TestSupport.yaml("""
            cors: {allow_credentials: true}
            upstreams: [{name: u, endpoints: ["127.0.0.1:1"]}]
            routes: [{id: r, path: /, methods: [GET, PUT], upstream: u}]
            """)
        #expect(result.messages == [
            #"t.yaml:1:8 cors.allow_credentials: allow_credentials with every origin allowed ("*", the default) would let any site read credentialed responses: list the origins"#,
            #"t.yaml:3:11 routes[0].id: warning: route "r" runs a cors filter but its methods leave out OPTIONS: CORS preflights get 405 (add OPTIONS)"#,
        ])
        let off = TestSupport.yaml("rate_limit: {enabled: false}\ncors: {enabled: false, allow_origins: [bad]}\n")
        #expect(off.problems == [] && off.configuration?.filters == [], "a switched-off section asks nothing more")
    }

    @Test func compressionSettingsAndTheirMistakes() throws {
        let good = TestSupport.yaml("""
            filters: [{type: compression, algorithms: [deflate, GZIP], min_size: 2k, content_types: [text/*, Application/JSON], level: 9}]
            """)
        #expect(good.problems == [])
        #expect(try #require(good.configuration).filters == [FilterConfig(.compression(CompressionSettings(
            algorithms: [.deflate, .gzip], minSize: 2048, contentTypes: ["text/*", "application/json"], level: 9)))])
        let bad = TestSupport.yaml("""
            filters:
              - {type: compression, algorithms: [br], content_types: ["*/*", "text/html; charset=utf-8"], level: 0}
              - {type: compression, algorithms: []}
            """)
        #expect(bad.messages == [
            #"t.yaml:2:37 filters[0].algorithms: unknown algorithm "br"; use gzip or deflate"#,
            #"t.yaml:2:58 filters[0].content_types: content_types must list media types (type/subtype or type/*), got "*/*", "text/html; charset=utf-8""#,
            #"t.yaml:2:102 filters[0].level: must be between 1 and 9, got 0"#,
            #"t.yaml:3:37 filters[1].algorithms: algorithms must list gzip, deflate or both"#,
            "t.yaml routes: warning: no routes: every request will get 404",
        ])
    }

    /// Loom's top-level `compression` section is a compression filter, first of all (its
    /// response phase runs last); WarpDrive's gzip flag likewise, unless a section is given.
    @Test func compressionSectionAndGzipFlagComeFirst() throws {
        let yaml = TestSupport.yaml("""
            cors: {allow_origins: ["https://a.example"]}
            compression: {level: 1}
            filters: [{type: security_headers}]
            """)
        #expect(try #require(yaml.configuration).filters.map(\.type) == ["compression", "cors", "security_headers"])
        #expect(yaml.configuration?.filters.first == FilterConfig(.compression(CompressionSettings(level: 1))))
        let off = TestSupport.yaml("compression: {enabled: false, level: 42}\n")
        #expect(off.configuration?.filters == [] && off.problems.filter { $0.contains("level") } == [])

        let toml = TestSupport.toml("""
            [middleware]
            gzip_compression_enabled = true
            [cors]
            allow_origins = ["https://a.example"]
            """)
        #expect(try #require(toml.configuration).filters.map(\.type) == ["compression", "cors"])
        let both = TestSupport.toml("""
            [middleware]
            gzip_compression_enabled = true
            [compression]
            algorithms = ["deflate"]
            """)
        #expect(try #require(both.configuration).filters == [FilterConfig(.compression(CompressionSettings(algorithms: [.deflate])))])
    }

    @Test func authFiltersReadTheirKeyFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let jwks = #"{"keys":[{"kty":"OKP","kid":"k1","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#
        try jwks.write(to: directory.appendingPathComponent("keys.json"), atomically: true, encoding: .utf8)
        try "# users\nalice:$2y$10$fZJCO1XHnnBMGKfoXyDgCO2DfZnvh6Q.AqPdkX85uP4EiK0s.bv0G\n\nbob:{SHA}lW2ZjsFP+nY11L3OFMUH/UdgUQQ=\n"
            .write(to: directory.appendingPathComponent("users"), atomically: true, encoding: .utf8)
        try "alice:plain\n".write(to: directory.appendingPathComponent("plain"), atomically: true, encoding: .utf8)
        try #"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#.write(to: directory.appendingPathComponent("oct.json"), atomically: true, encoding: .utf8)

        // Relative paths are the configuration file's directory's.
        let good = ConfigLoader.load(text: """
            filters:
              - {type: jwt, jwks_file: keys.json, issuer: https://id.example, audience: [a, b], leeway: 1m, claims_to_headers: {sub: X-User-ID}, algorithms: [EdDSA]}
              - {type: basic_auth, htpasswd_file: users, realm: Staff}
            """, fileName: directory.appendingPathComponent("loom.yaml").path, dialect: .loomYAML, environment: [:])
        #expect(good.messages.filter { !$0.contains("no routes") } == [])
        let filters = try #require(good.configuration).filters
        #expect(filters[0] == FilterConfig(.jwt(JWTSettings(
            keys: .jwks(path: "keys.json", json: jwks),
            algorithms: ["EdDSA"], issuers: ["https://id.example"], audiences: ["a", "b"], leeway: .seconds(60),
            claimsToHeaders: [.init(claim: "sub", header: "X-User-ID")]))))
        guard case .basicAuth(let basic) = filters[1].settings else {
            Issue.record("basic_auth settings")
            return
        }
        #expect(basic.entries.map(\.user) == ["alice", "bob"] && basic.realm == "Staff")

        let bad = ConfigLoader.load(text: """
            filters:
              - {type: jwt, secret: short}
              - {type: jwt, secret: "a secret that is long enough, surely", jwks_file: keys.json}
              - {type: jwt, jwks_file: missing.json}
              - {type: jwt, jwks_file: oct.json}
              - {type: jwt, secret: "a secret that is long enough, surely", algorithm: RS256}
              - {type: jwt, jwks_file: keys.json, algorithms: [HS256, none]}
              - {type: jwt, jwks_file: keys.json, claims_to_headers: {sub: Host}}
              - {type: jwt}
              - {type: basic_auth, htpasswd_file: plain}
              - {type: basic_auth, users: []}
              - {type: basic_auth, users: ["bob:{SHA}lW2ZjsFP+nY11L3OFMUH/UdgUQQ="], realm: 'say "hi"'}
              - {type: basic_auth, users: ["carol:$2y$03$fZJCO1XHnnBMGKfoXyDgCO2DfZnvh6Q.AqPdkX85uP4EiK0s.bv0G"]}
              - {type: jwt, secret: "forty bytes of secret, not the 64 needed", algorithm: HS512}
            """, fileName: directory.appendingPathComponent("bad.yaml").path, dialect: .loomYAML, environment: [:])
        let messages = bad.messages.map { $0.replacingOccurrences(of: directory.path + "/", with: "") }
        #expect(messages.filter { !$0.contains("no routes") } == [
            #"bad.yaml:2:25 filters[0].secret: secret must be at least 32 bytes for HS256 (RFC 7518 §3.2); use a long random value, e.g. "${JWT_SECRET}""#,
            #"bad.yaml:3:5 filters[1]: use secret or jwks_file, not both"#,
            #"bad.yaml:4:28 filters[2].jwks_file: cannot read missing.json"#,
            #"bad.yaml:5:28 filters[3].jwks_file: oct.json: keys[0] has kty "oct"; use RSA, EC or OKP public keys (a shared secret goes in "secret")"#,
            #"bad.yaml:6:76 filters[4].algorithm: algorithm must be one of HS256, HS384, HS512 with a secret, got "RS256""#,
            #"bad.yaml:7:51 filters[5].algorithms: algorithms must list some of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, got HS256, none"#,
            #"bad.yaml:8:64 filters[6].claims_to_headers.sub: header "Host" is managed by loom and cannot be set here"#,
            #"bad.yaml:9:5 filters[7]: missing required key "jwks_file" (or "secret")"#,
            #"bad.yaml:10:39 filters[8].htpasswd_file: plain:1: expected user:hash with a bcrypt ($2y$, $2a$, $2b$; cost 4 to 17) or {SHA} hash (create one with `htpasswd -B`)"#,
            #"bad.yaml:11:5 filters[9]: basic_auth has no users: every request would be refused"#,
            #"bad.yaml:12:81 filters[10].realm: realm must be non-empty text without quotes, backslashes or line breaks"#,
            #"bad.yaml:13:31 filters[11].users[0]: expected user:hash with a bcrypt ($2y$, $2a$, $2b$; cost 4 to 17) or {SHA} hash (create one with `htpasswd -B`)"#,
            #"bad.yaml:14:25 filters[12].secret: secret must be at least 64 bytes for HS512 (RFC 7518 §3.2); use a long random value, e.g. "${JWT_SECRET}""#,
        ])
    }

    @Test func disabledCORSSectionAddsNoFilter() {
        let result = TestSupport.yaml("cors: {enabled: false, allow_origins: [\"*\"]}\n")
        #expect(result.configuration?.filters == [])
    }

    @Test func mistakesAreNamed() {
        let result = TestSupport.yaml("""
            filters:
              - {type: securty_headers}
              - {hsts: true}
              - {type: ip_filter}
              - {type: ip_filter, allow: ["10.0.0.0/33"], block: []}
              - {type: security_headers, frame_options: allow, content_security_policy: ""}
              - {type: cors, allow_origins: ["https://A.example.com/"]}
              - {type: cors}
              - "cors"
            routes: [{id: r, path: /, respond: {status: 200}}]
            """)
        #expect(result.messages == [
            #"t.yaml:2:12 filters[0].type: unknown filter type "securty_headers" (did you mean "security_headers"?)"#,
            #"t.yaml:3:5 filters[1]: missing required key "type" (one of api_key, basic_auth, body_limit, compression, cors, headers, ip_filter, jwt, rate_limit, security_headers)"#,
            #"t.yaml:4:5 filters[2]: ip_filter needs "allow" or "deny""#,
            #"t.yaml:5:31 filters[3].allow[0]: invalid address or CIDR block "10.0.0.0/33" (use e.g. "10.0.0.0/8" or "::1")"#,
            #"t.yaml:5:47 filters[3].block: unknown key "block""#,
            #"t.yaml:6:45 filters[4].frame_options: unknown value "allow"; use one of DENY, SAMEORIGIN, or false"#,
            #"t.yaml:6:77 filters[4].content_security_policy: content_security_policy must be one non-empty line"#,
            #"t.yaml:7:34 filters[5].allow_origins[0]: invalid origin "https://A.example.com/" (use "*", "https://app.example.com", "http://localhost:3000" or "https://*.example.com")"#,
            #"t.yaml:9:5 filters[7]: expected a filter ({type: ..., ...}), got "cors""#,
            #"t.yaml:10:11 routes[0].id: route "r" would run 2 cors filters (the top-level cors section counts as one): configure CORS once"#,
        ])
    }
}
