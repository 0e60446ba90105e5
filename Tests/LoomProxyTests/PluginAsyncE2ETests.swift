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
