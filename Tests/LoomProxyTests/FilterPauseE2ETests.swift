import Foundation
import LoomConfig
import LoomFilters
import NIOCore
import Testing

@testable import LoomProxy

/// Filters that pause (to finish their decision after asynchronous work) through a running
/// proxy: the request waits, its body buffered, and goes on as the filter decides; a filter
/// that never decides fails closed at the route's `response_header` timeout; a client that
/// leaves meanwhile costs nothing.
extension ProxyE2E {
    @Suite struct FilterPauseE2ETests {
        /// Decides on another thread after a delay: the decision comes from the request's
        /// `X-Decision` field (`continue` adds `X-Checked` upstream, `reject` refuses with
        /// 403, `respond` answers 200 itself, `never` never resumes, `twice` resumes twice).
        struct Deferred: HTTPFilter {
            let name = "deferred"
            /// Its own queue: the shared global one may be busy with other tests' work, and a
            /// late decision would look like a filter that never decides.
            static let queue = DispatchQueue(label: "deferred-filter")

            func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
                let decision = request.header("x-decision") ?? "continue"
                return .pause(FilterPause { resumer in
                    Self.queue.asyncAfter(deadline: .now() + .milliseconds(30)) {
                        switch decision {
                        case "never":
                            break
                        case "reject":
                            resumer.resume(.reject(FilterRejection(status: 403, code: "forbidden", message: "no")))
                        case "respond":
                            resumer.resume(.respond(LocalResponse(status: 200, body: "decided")))
                        case "twice":
                            resumer.resume(.respond(LocalResponse(status: 200, body: "first")))
                            resumer.resume(.respond(LocalResponse(status: 200, body: "second")))
                        default:
                            resumer.resume { request in
                                request.upstreamChanges.set("X-Checked", "yes")
                                return .continue
                            }
                        }
                    }
                })
            }
        }

        static let config = """
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
            routes: [{id: all, upstream: app, timeouts: {response_header: 2s}, filters: [{type: security_headers}, {type: ip_filter, deny: ["192.0.2.1"]}]}]
            """

        static func withPausingProxy(_ body: ([TestBackend], ProxyHarness) async throws -> Void) async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, config, filters: FilterRegistry.builtIn.registering("ip_filter") { _ in Deferred() }, body)
        }

        @Test func theRequestWaitsThenGoesOnAsTheFilterDecides() async throws {
            try await Self.withPausingProxy { backends, proxy in
                let client = try RawClient(port: proxy.port)
                // Keep-alive: two requests, the second with a body that arrives while paused.
                try client.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
                let first = try client.readResponse()
                #expect(first.status == 200)
                #expect(try EchoedRequest(first).values("x-checked") == ["yes"], "the resumed filter's change reaches the upstream")
                #expect(first.header("x-frame-options") == "DENY", "the filters before it still run on the response")
                try client.send("POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel")
                try client.send("lo")
                let second = try client.readResponse()
                #expect(try EchoedRequest(second).bodyBytes == 5)

                let rejected = try proxy.get("/c", headers: ["X-Decision: reject"])
                #expect(rejected.status == 403 && E2E.json(rejected)["error"] as? String == "forbidden")
                let answered = try proxy.get("/d", headers: ["X-Decision: twice"])
                #expect(answered.status == 200 && answered.bodyText == "first", "only the first resume counts")
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 2)
            }
        }

        @Test func aFilterThatNeverDecidesFailsClosedAtTheTimeout() async throws {
            try await Self.withPausingProxy { backends, proxy in
                let started = ContinuousClock.now
                let response = try proxy.get("/never", headers: ["X-Decision: never"])
                #expect(response.status == 500 && E2E.json(response)["error"] as? String == "internal_error")
                #expect(ContinuousClock.now - started >= .milliseconds(1900))
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 0)
                #expect(await E2E.eventually { proxy.logs.all.contains { "\($0["error"] ?? "")".contains("did not resume") } })
            }
        }

        @Test func aClientLeavingWhilePausedIsLoggedAndTheLateDecisionIgnored() async throws {
            try await Self.withPausingProxy { backends, proxy in
                do {
                    let client = try RawClient(port: proxy.port)
                    try client.send("GET /gone HTTP/1.1\r\nHost: a\r\n\r\n")
                    client.setResetOnClose()
                    try await Task.sleep(for: .milliseconds(5))
                }  // reset here, before the filter decides
                #expect(await E2E.eventually { proxy.logs.all.contains { "\($0["status"] ?? "")" == "499" } })
                try await Task.sleep(for: .milliseconds(100))
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 0)
                #expect(try proxy.get("/after").status == 200, "the proxy carries on")
            }
        }
    }
}
