import LoomConfig
import NIOCore
import Testing

@testable import LoomFilters

/// The built-in filters as pure functions of a request (and response).
@Suite struct BuiltInFilterTests {
    static let cors = CORSFilter(CORSSettings(
        allowOrigins: ["https://app.example.com", "https://*.example.org", "http://localhost:3000"], allowMethods: ["GET", "PUT", "DELETE"],
        allowHeaders: ["Content-Type", "X-Token"], exposeHeaders: ["X-Request-ID"], maxAge: .seconds(600), allowCredentials: true))

    static func preflight(_ origin: String, _ method: String, headers: String? = nil) -> [(String, String)] {
        var fields = [("Origin", origin), ("Access-Control-Request-Method", method)]
        if let headers { fields.append(("Access-Control-Request-Headers", headers)) }
        return fields
    }

    /// The preflight matrix: origin × method × requested headers.
    @Test(arguments: [
        ("https://app.example.com", "PUT", "content-type, x-token", true),
        ("https://app.example.com", "POST", nil, true),  // safelisted method
        ("https://app.example.com", "PATCH", nil, false),  // method not allowed
        ("https://app.example.com", "PUT", "x-other", false),  // header not allowed
        ("https://evil.example.com", "GET", nil, false),
        ("https://a.b.example.org", "GET", nil, true),  // subdomain pattern
        ("https://example.org", "GET", nil, false),  // the bare domain is not a subdomain
        ("http://a.example.org", "GET", nil, false),  // scheme differs
        ("http://localhost:3000", "DELETE", nil, true),
        ("http://localhost:3001", "DELETE", nil, false),
    ] as [(String, String, String?, Bool)])
    func preflightMatrix(origin: String, method: String, headers: String?, allowed: Bool) throws {
        var request = FilterTest.request("OPTIONS", Self.preflight(origin, method, headers: headers))
        let decision = try Self.cors.onRequestHeaders(&request)
        guard allowed else {
            #expect(decision == .reject(CORSFilter.refusal))
            return
        }
        guard case .respond(let response) = decision else {
            Issue.record("expected a 204 answer, got \(decision)")
            return
        }
        let fields = Dictionary(uniqueKeysWithValues: response.headers.map { ($0.name, $0.value) })
        #expect(response.status == 204)
        #expect(fields["Access-Control-Allow-Origin"] == origin, "credentials: the origin, never *")
        #expect(fields["Access-Control-Allow-Methods"] == "GET, PUT, DELETE")
        #expect(fields["Access-Control-Allow-Headers"] == headers.map { $0.replacingOccurrences(of: ", ", with: ", ") })
        #expect(fields["Access-Control-Allow-Credentials"] == "true")
        #expect(fields["Access-Control-Max-Age"] == "600")
        #expect(fields["Vary"]?.hasPrefix("Origin") == true)
    }

    @Test func nonCORSRequestsPassUntouched() throws {
        var plainOptions = FilterTest.request("OPTIONS", [("Origin", "https://app.example.com")])
        #expect(try Self.cors.onRequestHeaders(&plainOptions) == .continue, "OPTIONS without Access-Control-Request-Method is proxied")
        var noOrigin = FilterTest.request("OPTIONS", [("Access-Control-Request-Method", "GET")])
        #expect(try Self.cors.onRequestHeaders(&noOrigin) == .continue)
        var response = FilterTest.response()
        try Self.cors.onResponseHeaders(&response, request: noOrigin)
        #expect(FilterTest.lines(response.changes) == ["Vary: Origin"], "only Vary: the answer depends on the origin")
    }

    @Test func actualResponsesGetTheirCORSFields() throws {
        let request = FilterTest.request("GET", [("Origin", "https://app.example.com")])
        var response = FilterTest.response()
        try Self.cors.onResponseHeaders(&response, request: request)
        #expect(FilterTest.lines(response.changes) == [
            "Access-Control-Allow-Origin: https://app.example.com", "Access-Control-Allow-Credentials: true",
            "Access-Control-Expose-Headers: X-Request-ID", "Vary: Origin",
        ])
        var preflight = FilterTest.request("OPTIONS", Self.preflight("https://app.example.com", "GET", headers: "x-token, bad header"))
        #expect(try Self.cors.onRequestHeaders(&preflight) == .reject(CORSFilter.refusal), "requested names must be tokens")
        var refused = FilterTest.response()
        try Self.cors.onResponseHeaders(&refused, request: FilterTest.request("GET", [("Origin", "https://evil.test")]))
        #expect(FilterTest.lines(refused.changes) == ["Vary: Origin"], "a disallowed origin gets no CORS fields")
    }

    @Test func anyOriginWithoutCredentialsIsAStar() throws {
        let open = CORSFilter(CORSSettings(allowHeaders: ["*"]))
        var request = FilterTest.request("OPTIONS", Self.preflight("https://x.test", "GET", headers: "X-Anything"))
        guard case .respond(let response) = try open.onRequestHeaders(&request) else {
            Issue.record("expected an answer")
            return
        }
        #expect(response.headers.first { $0.name == "Access-Control-Allow-Origin" }?.value == "*")
        #expect(response.headers.first { $0.name == "Access-Control-Allow-Headers" }?.value == "X-Anything")
        var actual = FilterTest.response()
        try open.onResponseHeaders(&actual, request: FilterTest.request("GET", [("Origin", "https://x.test")]))
        #expect(FilterTest.lines(actual.changes) == ["Access-Control-Allow-Origin: *"], "no Vary: the answer is the same for every origin")
    }

    @Test func originsAreValidated() {
        for valid in ["*", "https://a.example.com", "http://localhost:3000", "https://*.example.com", "http://[::1]:8080"] {
            #expect(CORSSettings.isValidOrigin(valid), "\(valid)")
        }
        for invalid in ["example.com", "https://A.example.com", "https://a.example.com/", "https://a.example.com:0", "https://", "*.example.com"] {
            #expect(!CORSSettings.isValidOrigin(invalid), "\(invalid)")
        }
    }

    @Test func securityHeadersLeaveTheUpstreamsOwnPolicy() throws {
        let filter = SecurityHeadersFilter(SecurityHeadersSettings(
            hsts: .init(maxAge: .seconds(63_072_000), includeSubdomains: true, preload: true), contentSecurityPolicy: "default-src 'self'"))
        var response = FilterTest.response(["Content-Security-Policy": "default-src https:", "x-frame-options": "SAMEORIGIN"])
        try filter.onResponseHeaders(&response, request: FilterTest.request())
        #expect(FilterTest.lines(response.changes) == [
            "Strict-Transport-Security: max-age=63072000; includeSubDomains; preload", "X-Content-Type-Options: nosniff",
            "Referrer-Policy: strict-origin-when-cross-origin",
        ])
        let quiet = SecurityHeadersFilter(SecurityHeadersSettings(contentTypeOptions: false, frameOptions: nil, referrerPolicy: nil))
        var untouched = FilterTest.response()
        try quiet.onResponseHeaders(&untouched, request: FilterTest.request())
        #expect(untouched.changes.isEmpty)
    }

    @Test func ipFilterAllowsAndDenies() throws {
        func decide(_ filter: IPFilter, _ ip: String?) throws -> FilterDecision {
            var request = FilterTest.request(clientIP: ip)
            return try filter.onRequestHeaders(&request)
        }
        let allowList = IPFilter(IPFilterSettings(allow: [AddressBlock("10.0.0.0/8")!, AddressBlock("2001:db8::/32")!], deny: [AddressBlock("10.6.6.0/24")!]))
        #expect(try decide(allowList, "10.1.2.3") == .continue)
        #expect(try decide(allowList, "2001:db8::7") == .continue)
        #expect(try decide(allowList, "::ffff:10.1.2.3") == .continue, "IPv4-mapped is IPv4")
        #expect(try decide(allowList, "10.6.6.6") == .reject(IPFilter.refusal), "deny wins")
        #expect(try decide(allowList, "192.0.2.1") == .reject(IPFilter.refusal))
        #expect(try decide(allowList, nil) == .reject(IPFilter.refusal), "unknown client with an allow list")
        let denyOnly = IPFilter(IPFilterSettings(deny: [AddressBlock("192.0.2.0/24")!]))
        #expect(try decide(denyOnly, "192.0.2.99") == .reject(IPFilter.refusal))
        #expect(try decide(denyOnly, "198.51.100.1") == .continue)
        #expect(try decide(denyOnly, nil) == .continue)
    }
}

/// `api_key` and WarpDrive's `require_auth`.
@Suite struct APIKeyFilterTests {
    func decide(_ filter: APIKeyFilter, _ fields: [(String, String)] = [], target: String = "/api/x") throws -> (FilterDecision, FilterRequest) {
        var request = FilterTest.request("GET", fields, target: target)
        return (try filter.onRequestHeaders(&request), request)
    }

    @Test func keysInAHeader() throws {
        let filter = APIKeyFilter(APIKeySettings(keys: ["k-one", "k-two"]))
        let (allowed, request) = try decide(filter, [("X-Api-Key", "k-two")])
        #expect(allowed == .continue)
        #expect(request.header("x-api-key") == nil, "the key is not forwarded")
        #expect(try decide(filter, [("X-API-Key", "k-thre")]).0 == .reject(filter.refusal))
        #expect(try decide(filter, target: "/x?api_key=k-one").0 == .reject(filter.refusal), "keys in the query only when configured")
        #expect(try decide(filter).0 == .reject(filter.refusal))
        #expect(filter.refusal.status == 401 && filter.refusal.headers == [HeaderPair(name: "WWW-Authenticate", value: #"APIKey header="X-API-Key""#)])
    }

    @Test func keysInAQueryParameterWhenConfigured() throws {
        let filter = APIKeyFilter(APIKeySettings(keys: ["k one"], query: "api_key"))
        let (allowed, request) = try decide(filter, target: "/x?a=1&api%5Fkey=k%20one&b=2")
        #expect(allowed == .continue)
        #expect(request.removedQueryParameters == ["api_key"], "neither forwarded nor logged")
        #expect(try decide(filter, [("X-API-Key", "k one")], target: "/x").0 == .continue, "the header still works")
        #expect(try decide(filter, target: "/x?api_key=nope").0 == .reject(filter.refusal))
        #expect(try decide(filter, [("X-API-Key", "wrong")], target: "/x?api_key=k%20one").0 == .reject(filter.refusal), "the header, when sent, is the one judged")
    }

    @Test func requireAuthWithoutATokenLetsNothingThrough() throws {
        let closed = APIKeyFilter(.adminToken(nil))
        #expect(try decide(closed, [("X-Admin-Token", "x")]).0 == .reject(closed.refusal))
        let open = APIKeyFilter(.adminToken("s3cret"))
        #expect(try decide(open, [("X-Admin-Token", "s3cret")]).0 == .continue)
    }

    @Test func constantTimeEqualityIsEquality() {
        for (a, b) in [("", ""), ("a", "a"), ("abc", "abd"), ("abc", "ab"), ("ab", "abc"), ("", "x")] {
            #expect(APIKeyFilter.constantTimeEquals(Array(a.utf8), Array(b.utf8)) == (a == b), "\(a) vs \(b)")
        }
    }
}

/// `body_limit`: declared lengths judged at once, chunked bodies counted as they stream.
@Suite struct BodyLimitFilterTests {
    let filter = BodyLimitFilter(maxSize: 10)

    @Test func declaredLengths() throws {
        var small = FilterTest.request("POST", [("Content-Length", "10")])
        #expect(try filter.onRequestHeaders(&small) == .continue && small.bodyTransforms.isEmpty)
        var large = FilterTest.request("POST", [("Content-Length", "11")])
        #expect(try filter.onRequestHeaders(&large) == .reject(filter.refusal))
        #expect(filter.refusal.status == 413 && filter.refusal.code == "payload_too_large")
        var none = FilterTest.request("GET")
        #expect(try filter.onRequestHeaders(&none) == .continue && none.bodyTransforms.isEmpty)
    }

    @Test func streamedBodiesAreCountedAndPassedOnUnchanged() throws {
        var request = FilterTest.request("POST", [("Transfer-Encoding", "chunked")])
        #expect(try filter.onRequestHeaders(&request) == .continue)
        let transforms = request.bodyTransforms
        #expect(transforms.transforms.count == 1)
        guard case .success(let first) = transforms.run(ByteBuffer(string: "123456"), endOfStream: false) else {
            Issue.record("the first 6 bytes pass")
            return
        }
        #expect(String(buffer: first) == "123456")
        guard case .success = transforms.run(ByteBuffer(string: "7890"), endOfStream: false) else {
            Issue.record("10 bytes in all pass")
            return
        }
        guard case .failure(.rejected(let rejection)) = transforms.run(ByteBuffer(string: "x"), endOfStream: false) else {
            Issue.record("the 11th byte is refused")
            return
        }
        #expect(rejection == filter.refusal)
    }
}
