import LoomConfig
import Testing

@testable import LoomProxy

/// `loom explain`'s report: every route's verdict with all its reasons, the parameters, and the
/// head loom would send, produced by the same parser, router and `HeadWriter` as the data path.
@Suite struct RequestExplainerTests {
    static let configuration: LoomConfiguration = {
        let result = ConfigLoader.load(text: """
            listeners: [{name: http, address: "127.0.0.1:8080"}]
            upstreams:
              - {name: users, endpoints: ["127.0.0.1:3001", "127.0.0.1:3002"], timeouts: {connect: 2s}}
              - {name: v2, endpoints: ["unix:/tmp/v2.sock"]}
            routes:
              - {id: health, path: /healthz, respond: {status: 200, body: ok}}
              - id: users-v2
                path: "/users/{id}/*"
                host: "*.example.com"
                headers: [{name: X-API-Version, value: v2}]
                upstream: v2
                rewrite: {regex: "^/users/([0-9]+)", replacement: "/v2/u/$1"}
              - {id: users, path: "/users/{id}", methods: [GET], upstream: users, add_headers: {X-Backend: users}}
            """, fileName: "gateway.yaml", dialect: .loomYAML, environment: [:])
        return result.configuration!
    }()

    static func explain(_ method: String, _ url: String, _ headers: [(name: String, value: String)] = []) throws -> RequestExplainer.Report {
        try RequestExplainer.explain(configuration, .init(method: method, url: url, headers: headers))
    }

    /// A listener's `client_identity_header` is never taken from a client, whichever
    /// listener the request came through (a plain one here).
    @Test func aClientIdentityHeaderIsNeverForwardedFromTheClient() throws {
        let configuration = try #require(ConfigLoader.load(text: """
            listeners:
              - {name: plain, address: "127.0.0.1:8080"}
              - name: secure
                address: "127.0.0.1:8443"
                protocol: https
                tls: {cert_file: /c.pem, key_file: /k.pem, client_auth: require, client_ca_file: /ca.pem, client_identity_header: X-Client-Subject}
            upstreams: [{name: u, endpoints: ["127.0.0.1:3001"]}]
            routes: [{id: r, path: "/*", upstream: u}]
            """, fileName: "f.yaml", dialect: .loomYAML, environment: [:]).configuration)
        let report = try RequestExplainer.explain(configuration, .init(method: "GET", url: "http://a/x", headers: [("x-client-subject", "CN=admin")]))
        #expect(report.text.contains("sent to") && !report.text.lowercased().contains("x-client-subject"), "\(report.text)")
    }

    /// A WebSocket handshake is shown with the upgrade fields loom forwards.
    @Test func aWebSocketHandshakeKeepsItsUpgradeFields() throws {
        let report = try Self.explain(
            "GET", "http://api.example.com/users/7", [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "k")])
        #expect(report.text.contains("\n  Upgrade: websocket\n") && report.text.contains("\n  Connection: upgrade\n"), "\(report.text)")
    }

    /// A gRPC call to an HTTP/2 upstream: its deadline, and the HEADERS frame's fields (with
    /// `te: trailers`, without `Host`) rather than an HTTP/1.1 head.
    @Test func aGRPCCallShowsItsDeadlineAndTheHTTP2Fields() throws {
        let configuration = try #require(ConfigLoader.load(text: """
            upstreams: [{name: g, protocol: grpc, endpoints: ["127.0.0.1:50051"]}]
            routes: [{id: r, path: "/*", upstream: g}]
            """, fileName: "f.yaml", dialect: .loomYAML, environment: [:]).configuration)
        let report = try RequestExplainer.explain(configuration, .init(method: "POST", url: "http://a/pkg.S/M", headers: [
            ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "2S"),
        ]))
        #expect(report.text.contains("\ngRPC call: its grpc-timeout (2s) bounds it too;"), "\(report.text)")
        #expect(report.text.contains("over HTTP/2 (grpc) as"), "\(report.text)")
        #expect(report.text.contains("\n  :method: POST\n  :scheme: http\n  :authority: a\n  :path: /pkg.S/M\n"), "\(report.text)")
        #expect(report.text.contains("\n  te: trailers") && !report.text.contains("Host:"), "\(report.text)")
    }

    /// The route's filters are named in chain order (global first), not run.
    @Test func namesTheRoutesFilters() throws {
        let configuration = try #require(ConfigLoader.load(text: """
            rate_limit: {rate: 10}
            upstreams: [{name: u, endpoints: ["127.0.0.1:3001"]}]
            routes: [{id: r, path: "/*", upstream: u, filters: [{type: ip_filter, deny: ["192.0.2.0/24"]}]}]
            """, fileName: "f.yaml", dialect: .loomYAML, environment: [:]).configuration)
        let report = try RequestExplainer.explain(configuration, .init(method: "GET", url: "http://a/x", headers: []))
        #expect(report.text.contains("\nfilters: rate_limit, ip_filter (run in this order; not evaluated here)\n"), "\(report.text)")
    }

    @Test func namesEveryReasonAndShowsTheUpstreamHead() throws {
        let report = try Self.explain("GET", "https://api.example.com/users/42?full=1", [("X-API-Version", "v1")])
        #expect(report.matched)
        #expect(report.text == """
            GET /users/42?full=1 (host "api.example.com", path "/users/42")

            routes in matching order (priority, then file order):
              1. health: no, path "/users/42" does not match "/healthz" (exact)
              2. users-v2: no, header X-API-Version must be "v2"; the request has "v1"
              3. users: matches

            matched route "users"
            parameters: id="42"
            upstream "users": round robin over 127.0.0.1:3001, 127.0.0.1:3002
            filters: none
            timeouts: connect 2s, response header 1m, idle 1m, whole request unlimited, tunnel 1h

            sent to 127.0.0.1:3001 as (from client 127.0.0.1):
              GET /users/42?full=1 HTTP/1.1
              Host: api.example.com
              X-API-Version: v1
              X-Forwarded-For: 127.0.0.1
              X-Forwarded-Proto: http
              X-Forwarded-Host: api.example.com
              X-Forwarded-Port: 443
              Via: 1.1 loom
              X-Request-ID: <generated>
              X-Backend: users

            """)
    }

    @Test func showsTheRewrittenPath() throws {
        let report = try Self.explain("GET", "http://eu.example.com/users/42/orders", [("X-API-Version", "v2"), ("X-Request-ID", "abc-1")])
        #expect(report.text.contains("  2. users-v2: matches\n"))
        #expect(report.text.contains("  GET /v2/u/42/orders HTTP/1.1\n"))
        #expect(report.text.contains("  X-Request-ID: abc-1\n"))
        #expect(report.text.contains("sent to unix:/tmp/v2.sock"))
    }

    @Test func explainsWhatLoomAnswersItself() throws {
        let notAllowed = try Self.explain("DELETE", "http://x/users/42")
        #expect(!notAllowed.matched)
        #expect(notAllowed.text.contains(#"2. users-v2: no, host "x" is not "*.example.com"; header X-API-Version must be "v2"; the request has none"#))
        #expect(notAllowed.text.contains("3. users: no, method DELETE is not one of GET"))
        #expect(notAllowed.text.hasSuffix("loom answers 405 with Allow: GET: routes match everything but the method\n"))

        let notFound = try Self.explain("GET", "/nowhere", [("Host", "a")])
        #expect(notFound.text.hasSuffix("loom answers 404: no route matches\n"))
        #expect(try Self.explain("GET", "http://a/healthz").text.contains("loom answers 200 itself (2 body bytes)"))
        #expect(try Self.explain("GET", "http://a/a/../healthz").text.hasSuffix("loom answers 400: the path has \".\" or \"..\" segments\n"))
        // HTTP/1.1 needs a Host: a bare path without one is what loom refuses.
        #expect(try Self.explain("GET", "/healthz").text.hasPrefix("loom answers 400: "))
        #expect(try Self.explain("GET", "/healthz", [("Bad Name", "x")]).text.hasPrefix("loom answers 400: "))
    }

    @Test func refusesWhatIsNotARequest() {
        #expect(throws: RequestExplainer.Problem.self) { try Self.explain("GET", "ftp://x/") }
        #expect(throws: RequestExplainer.Problem.self) { try Self.explain("GET", "http:///path") }
    }
}
