import LoomConfig
import Testing

@testable import LoomFilters

/// The chain's order, early answers and recovery; field changes; the registry.
@Suite struct FilterChainTests {
    /// Records its calls in a shared log and does what it is told.
    struct Probe: HTTPFilter {
        let name: String
        let decision: FilterDecision
        var fails = false
        let log: Log

        final class Log: @unchecked Sendable {
            var calls: [String] = []
        }

        struct Failure: Error {}

        func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
            log.calls.append("\(name).request")
            if fails { throw Failure() }
            request.upstreamChanges.add("X-Seen", name)
            return decision
        }

        func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
            log.calls.append("\(name).response")
            if fails { throw Failure() }
        }

        func onLog(_ entry: FilterLogEntry, request: FilterRequest) {
            log.calls.append("\(name).log \(entry.status)")
        }
    }

    @Test func filtersRunInOrderUntilOneAnswers() {
        let log = Probe.Log()
        let chain = FilterChain(filters: [
            Probe(name: "a", decision: .continue, log: log),
            Probe(name: "b", decision: .respond(LocalResponse(status: 204)), log: log),
            Probe(name: "c", decision: .continue, log: log),
        ])
        var request = FilterTest.request()
        #expect(chain.requestHeaders(&request) == .respond(LocalResponse(status: 204)))
        #expect(log.calls == ["a.request", "b.request"])
        #expect(request.header("x-seen") == "a", "changes so far are visible")
        var response = FilterTest.response()
        #expect(chain.responseHeaders(&response, request: request) == .continue)
        chain.log(FilterLogEntry(status: 204, durationNanoseconds: 1, bytesIn: 0, bytesOut: 0), request: request)
        #expect(log.calls == ["a.request", "b.request", "c.response", "b.response", "a.response", "a.log 204", "b.log 204", "c.log 204"])
    }

    @Test func aThrowingFilterBecomesAFailureNamingIt() {
        let log = Probe.Log()
        let chain = FilterChain(filters: [Probe(name: "a", decision: .continue, fails: true, log: log), Probe(name: "b", decision: .continue, log: log)])
        var request = FilterTest.request()
        guard case .failed(let failure) = chain.requestHeaders(&request) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.filter == "a" && failure.phase == "request headers")
        #expect(log.calls == ["a.request"], "the chain stops at the failing filter")
        var response = FilterTest.response()
        guard case .failed(let responseFailure) = chain.responseHeaders(&response, request: request) else {
            Issue.record("the failing filter did not fail the phase")
            return
        }
        #expect(responseFailure.phase == "response headers")
    }

    /// A filter that holds an upstream's response stops the phase; resumed, the filters
    /// before it run; one that answers replaces the response.
    @Test func aHeldResponseResumesWithTheEarlierFilters() {
        struct Holder: HTTPFilter {
            let name: String
            let hold: Bool
            func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
                response.changes.add("x-order", name)
                if hold, response.canBeHeld { response.hold(FilterResponsePause { _ in }) }
            }
        }
        let chain = FilterChain(filters: [Holder(name: "a", hold: false), Holder(name: "b", hold: true), Holder(name: "c", hold: false)])
        let request = FilterTest.request()
        var response = FilterTest.response()
        response.canBeHeld = true
        guard case .paused(let index, _) = chain.responseHeaders(&response, request: request) else {
            Issue.record("b did not hold the response")
            return
        }
        #expect(index == 1 && response.changes.rules.add.map(\.value) == ["c", "b"])
        #expect(chain.resumeResponse(&response, request: request, at: 1) { $0.changes.add("x-resumed", "b") } == .continue)
        #expect(response.changes.rules.add.map(\.value) == ["c", "b", "b", "a"], "a ran after b resumed")
        let answered = chain.resumeResponse(&response, request: request, at: 1) { $0.answer(LocalResponse(status: 401)) }
        #expect(answered == .respond(LocalResponse(status: 401)))

        var local = FilterTest.response()
        #expect(chain.responseHeaders(&local, request: request) == .continue, "loom's own answers are never held")
    }

    @Test func headerChangesCombineAsRulesDo() {
        var changes = HeaderChanges()
        changes.add("X-A", "1")
        changes.set("X-B", "2")
        changes.add("X-B", "3")
        changes.remove("X-A")
        #expect(FilterTest.lines(changes) == ["-X-A", "X-B: 2", "X-B: 3"])
        #expect(changes.value("x-a", received: "old") == nil)
        #expect(changes.value("x-b", received: "old") == "2")
        #expect(changes.value("x-c", received: "old") == "old")
        changes.set("X-B", "4")
        #expect(FilterTest.lines(changes) == ["-X-A", "X-B: 4"], "a later set replaces earlier changes")
        // Merged with a route's rules, the filter's set/remove take the name over.
        let route = HeaderRules(add: [HeaderPair(name: "X-B", value: "route")], set: [HeaderPair(name: "X-Keep", value: "k")], remove: ["X-Gone"])
        let merged = changes.applied(to: route)
        #expect(merged.add.isEmpty && merged.set.map(\.value) == ["k", "4"] && merged.remove == ["X-Gone", "X-A"])
    }

    @Test func requestReadsSeeEarlierChanges() {
        var request = FilterTest.request("GET", [("X-Token", "abc"), ("Accept", "a")])
        #expect(request.header("X-TOKEN") == "abc")
        request.upstreamChanges.remove("x-token")
        #expect(request.header("x-token") == nil)
        request.upstreamChanges.add("X-Token", "new")
        #expect(request.header("x-token") == "new")
    }

    /// Every filter type the configuration readers accept has a factory, and each factory
    /// builds its own type only.
    @Test func everyConfigurableTypeHasAFactory() {
        let samples: [FilterSettings] = [
            .cors(CORSSettings()), .securityHeaders(SecurityHeadersSettings()), .ipFilter(IPFilterSettings(deny: [])), .rateLimit(RateLimitSettings(rate: 1)),
            .apiKey(APIKeySettings(keys: ["k"])), .compression(CompressionSettings()),
            .bodyLimit(BodyLimitSettings(maxSize: 1)), .jwt(JWTSettings(keys: .secret(String(repeating: "s", count: 32), algorithm: "HS256"))),
            .basicAuth(BasicAuthSettings(entries: [.init(user: "a", hash: "{SHA}lW2ZjsFP+nY11L3OFMUH/UdgUQQ=")])),
            .headers(HeaderFilterSettings(request: HeaderRules(add: [HeaderPair(name: "X-A", value: "1")]))),
        ]
        #expect(Set(samples.map(\.typeName)) == Set(FilterConfig.knownTypes), "a sample per readable type")
        let built = FilterRegistry.builtIn.chain(samples.map(FilterConfig.init))
        #expect(!built.filters.contains { $0 is UnavailableFilter })
        #expect(built.filters.map(\.name) == samples.map(\.typeName))
    }

    /// A type without a factory fails closed: 500, never a skipped check.
    @Test func aMissingFactoryFailsClosed() {
        let chain = FilterRegistry().chain([FilterConfig(.ipFilter(IPFilterSettings(deny: [])))])
        var request = FilterTest.request()
        guard case .failed(let failure) = chain.requestHeaders(&request) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.filter == "ip_filter" && failure.error == "no factory for filter type ip_filter")
    }
}

/// A paused filter resumes where it stopped: its decision, then the later filters.
@Suite struct FilterChainPauseTests {
    struct Pauser: HTTPFilter {
        let name = "pauser"
        let pause = FilterPause { _ in }
        func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision { .pause(pause) }
    }

    @Test func resumingGoesOnWithTheLaterFilters() {
        let log = FilterChainTests.Probe.Log()
        let pauser = Pauser()
        let chain = FilterChain(filters: [
            FilterChainTests.Probe(name: "a", decision: .continue, log: log), pauser,
            FilterChainTests.Probe(name: "c", decision: .continue, log: log),
        ])
        var request = FilterTest.request()
        #expect(chain.requestHeaders(&request) == .paused(index: 1, pauser.pause))
        #expect(log.calls == ["a.request"])
        #expect(chain.name(at: 1) == "pauser")

        var resumed = request
        let verdict = chain.resume(&resumed, at: 1) { request in
            request.upstreamChanges.set("X-Resumed", "1")
            return .continue
        }
        #expect(verdict == .continue)
        #expect(log.calls == ["a.request", "c.request"])
        #expect(resumed.header("x-resumed") == "1" && resumed.upstreamChanges.rules.add.map(\.value) == ["a", "c"])

        let refusal = FilterRejection(status: 403, code: "forbidden", message: "no")
        #expect(chain.resume(&request, at: 1) { _ in .reject(refusal) } == .reject(refusal))
        #expect(chain.resume(&request, at: 1) { _ in .pause(pauser.pause) } == .paused(index: 1, pauser.pause), "it may pause again")
        struct Late: Error {}
        guard case .failed(let failure) = chain.resume(&request, at: 1, with: { _ in throw Late() }) else {
            Issue.record("a throwing resume is a failure of that filter")
            return
        }
        #expect(failure.filter == "pauser")
    }
}
