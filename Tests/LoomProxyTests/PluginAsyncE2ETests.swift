import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// A plugin's asynchronous host calls through a running proxy: an HTTP call to a configured
/// upstream pauses the request until its response (then continue, answer, or fail), timers
/// tick on every event loop, and shared queues wake the instance that registered them.
extension ProxyE2E {
    @Suite struct PluginAsyncE2ETests {
        static func config(_ name: String, config: String = "\"\"") -> String {
            """
            plugins: [{name: \(name), path: "{plugin:async}", config: \(config)}]
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
            routes: [{id: all, upstream: app, plugins: [\(name)]}]
            """
        }

        @Test func anHTTPCallPausesTheRequestUntilItsResponse() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config("calls")) { backends, proxy in
                let response = try proxy.get("/call")
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("x-call-status") == ["200"])
                let bytes = try #require(echoed.values("x-call-body-bytes").first.flatMap { Int($0) })
                #expect(bytes > 0, "the call's response body was readable (buffer 4)")
                #expect(backends[0].requestURIs.withLockedValue { $0 } == ["/called", "/call"], "the call went first, then the request")

                let denied = try proxy.get("/call-deny")
                #expect(denied.status == 401 && String(decoding: denied.body, as: UTF8.self) == "auth service said 200")

                let unknown = try EchoedRequest(proxy.get("/call-unknown"))
                #expect(unknown.values("x-call-status") == ["2"], "BAD_ARGUMENT for an upstream loom does not have")

                let slow = try EchoedRequest(proxy.get("/call-slow"))
                #expect(slow.values("x-call-failed") == ["1"], "a call past its timeout reports no headers")

                let trapped = try proxy.get("/call-trap")
                #expect(trapped.status == 500, "a trap in the call's callback fails the paused request")
                #expect(try proxy.get("/call").status == 200, "and a fresh instance serves the next")
            }
        }

        /// Closing or answering a stream from another context's callback (an HTTP call's)
        /// while its request is upstream, waiting for nothing of the plugin, takes effect at
        /// once, not at the stream's next callback (here, when the slow upstream answers).
        @Test func aStreamClosedOrAnsweredFromAnotherCallbackEndsAtOnce() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config("detached")) { _, proxy in
                let started = ContinuousClock.now
                let answered = try RawClient(port: proxy.port, timeout: 10)
                try answered.send("GET /delay?ms=5000 HTTP/1.1\r\nHost: a\r\nx-detach: answer\r\n\r\n")
                let response = try answered.readResponse()
                #expect(response.status == 403 && response.bodyText == "answered while the upstream was busy")
                #expect(ContinuousClock.now - started < .seconds(3), "not when the upstream answers, 5 s on")

                let closingStarted = ContinuousClock.now
                let closing = try RawClient(port: proxy.port, timeout: 10)
                try closing.send("GET /delay?ms=5000 HTTP/1.1\r\nHost: a\r\nx-detach: close\r\n\r\n")
                let (text, closed) = closing.readUntilClose()
                #expect(closed && text.isEmpty, "reset: no answer, the connection closed")
                #expect(ContinuousClock.now - closingStarted < .seconds(3))
                #expect(try proxy.get("/call").status == 200, "the instance still serves")
            }
        }

        /// A call whose upstream refuses the connection completes (even when the refusal is
        /// immediate) with no headers, and `proxy_get_status` says why.
        @Test func aFailedCallReportsBrokenConnection() async throws {
            let dead = try E2E.closedPort()
            let config = Self.config("failing").replacingOccurrences(
                of: "upstreams: [{name: app, endpoints: [\"127.0.0.1:{port0}\"]}]",
                with: "upstreams: [{name: app, endpoints: [\"127.0.0.1:{port0}\"]}, {name: dead, endpoints: [\"127.0.0.1:\(dead)\"]}]")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/call-dead"))
                #expect(echoed.values("x-call-failed") == ["1"])
                #expect(echoed.values("x-call-status-code") == ["11"] && echoed.values("x-call-status-message") == ["reset"], "\(echoed.headers)")
            }
        }

        /// An instance that fails takes the requests paused on it down with it at once,
        /// rather than leaving them to wait for a callback that can no longer come.
        @Test func aFailingInstanceFailsTheRequestsPausedOnIt() async throws {
            let config = "server: {worker_threads: 1}\n" + Self.config("shared")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { backends, proxy in
                // The call answers after 30 s: the stranded request must end long before.
                // Its end is timed on the thread that read it (the test's own task may be
                // scheduled late on a busy machine).
                let started = ContinuousClock.now
                let waiting = Task.detached {
                    let client = try RawClient(port: proxy.port, timeout: 40)
                    try client.send("GET /call-wait HTTP/1.1\r\nHost: a\r\n\r\n")
                    return (try client.readResponse(), ContinuousClock.now)
                }
                let called = await E2E.eventually(timeout: .seconds(10)) { backends[0].requestURIs.withLockedValue { $0 }.contains("/delay?ms=30000") }
                #expect(called, "the paused request's call reached the upstream")
                #expect(try proxy.get("/trap").status == 500)
                let (stranded, ended) = try await waiting.value
                #expect(stranded.status == 500, "the paused request failed with the instance")
                #expect(ended - started < .seconds(20), "before its call could have answered")
                #expect(try proxy.get("/call").status == 200, "and a fresh instance serves the next")
            }
        }

        /// `on_response_headers` answering Pause holds the upstream's response (its body
        /// waiting, the upstream not read) until the plugin continues it or answers in its
        /// place; a hold that never ends fails within the route's `response_header` timeout.
        @Test func aHeldResponseWaitsForTheCallThenContinuesOrIsReplaced() async throws {
            let config = Self.config("holding").replacingOccurrences(
                of: "routes: [{id: all, upstream: app, plugins: [holding]}]",
                with: "routes: [{id: all, upstream: app, plugins: [holding], timeouts: {response_header: 300ms}}]")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { backends, proxy in
                let continued = try proxy.get("/echo", headers: ["X-Hold: continue"])
                #expect(continued.status == 200 && continued.header("x-held-call-status") == "200", "\(continued.headers)")
                #expect(try EchoedRequest(continued).uri == "/echo", "the held body went on intact")
                #expect(backends[0].requestURIs.withLockedValue { $0 }.suffix(2) == ["/echo", "/called"], "the response waited for the call")

                // A body far larger than one read: the upstream is not read while held, then all of it arrives.
                let client = try RawClient(port: proxy.port, timeout: 5)
                try client.send("GET /stream?bytes=3000000 HTTP/1.1\r\nHost: a\r\nX-Hold: continue\r\n\r\n")
                let big = try client.readResponse()
                #expect(big.status == 200 && big.header("x-held-call-status") == "200")
                #expect(big.body.count == 3_000_000 && E2E.checksum(big.body) == E2E.checksum(E2E.streamPattern(3_000_000)))

                let replaced = try proxy.get("/echo", headers: ["X-Hold: answer"])
                #expect(replaced.status == 418 && replaced.bodyText == "replaced after a call that said 200")
                let atOnce = try proxy.get("/echo", headers: ["X-Hold: sync-answer"])
                #expect(atOnce.status == 403 && atOnce.bodyText == "replaced at once" && atOnce.header("x-ignored") == nil)

                let forever = try proxy.get("/echo", headers: ["X-Hold: forever"])
                #expect(forever.status == 500, "a hold past the response_header timeout fails the request")
                #expect(try proxy.get("/echo").status == 200, "and the gateway serves on")
            }
        }

        /// Pause at the end of a body (`end_of_stream`) holds its end until the plugin
        /// continues: here after an HTTP call, whose callback changes the held body.
        @Test func theEndOfABodyWaitsForTheCall() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config("bodies")) { backends, proxy in
                let body = String(repeating: "q", count: 50_000)
                let request = try proxy.request("POST /body-call HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                let echoed = try EchoedRequest(request)
                #expect(echoed.bodyBytes == body.utf8.count + 8 && echoed.checksum == E2E.checksum(Array((body + "+checked").utf8)))
                // The body's end waited for the call, whose callback appended to it (the checksum above). The
                // request's head and the call may leave in the same loop tick, on two connections: in either order.
                #expect(Set(backends[0].requestURIs.withLockedValue { $0 }.suffix(2)) == ["/body-call", "/called"])

                let response = try proxy.get("/stream?bytes=100000", headers: ["X-Hold: body-end"])
                #expect(response.status == 200)
                #expect(response.body.count == 100_008 && Array(response.body.prefix(8)) == Array("checked:".utf8))
                #expect(E2E.checksum(response.body.dropFirst(8)) == E2E.checksum(E2E.streamPattern(100_000)))
            }
        }

        /// Pause in a trailers callback holds the trailer section and the end of the body
        /// until the plugin continues (after an HTTP call here) or answers.
        @Test func trailersWaitForTheCall() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config("trailing")) { backends, proxy in
                func post(_ hold: String) throws -> RawResponse {
                    let client = try RawClient(port: proxy.port, timeout: 5)
                    try client.send(
                        "POST /trailers-call HTTP/1.1\r\nHost: a\r\nX-Trailers-Hold: \(hold)\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 7\r\n\r\n")
                    return try client.readResponse()
                }
                let continued = try post("continue")
                #expect(try continued.status == 200 && EchoedRequest(continued).bodyBytes == 3)
                // The head and the call leave in the same loop tick, on two connections: in either order.
                #expect(Set(backends[0].requestURIs.withLockedValue { $0 }.suffix(2)) == ["/trailers-call", "/called"])

                let answered = try post("answer")
                #expect(answered.status == 418 && answered.bodyText == "answered after the trailers' call said 200", "the request's end waited for the call")

                let client = try RawClient(port: proxy.port, timeout: 5)
                try client.send("GET /trailers HTTP/1.1\r\nHost: a\r\nX-Trailers-Hold: response\r\n\r\n")
                #expect(try client.readHead().status == 200)
                let text = String(decoding: client.readToEnd().0, as: UTF8.self).lowercased()
                #expect(text.contains("x-upstream-trailer: t1\r\n") && text.contains("x-held-call-status: 200\r\n"), "the callback's field is in the trailers: \(text)")
                #expect(backends[0].requestURIs.withLockedValue { $0 }.suffix(2) == ["/trailers", "/called"])
            }
        }

        @Test func timersTickAndQueuesWakeTheirRegistrant() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config("ticking", config: "tick")) { _, proxy in
                let plugin = try #require(proxy.engine.store.current.plugins.runtimes["ticking"]?.plugin)
                #expect(await E2E.eventually { (plugin.sharedCount("ticks") ?? 0) >= 10 }, "on_tick runs every 20 ms on each loop")

                let enqueued = try EchoedRequest(proxy.get("/enqueue/job-42"))
                #expect(enqueued.values("x-enqueue-status") == ["0"])
                #expect(await E2E.eventually { plugin.sharedText("last-job") == "job-42" }, "on_queue_ready dequeued the item")
            }
        }
    }
}
