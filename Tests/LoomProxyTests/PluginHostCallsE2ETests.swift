import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// The host calls and callbacks `hostcalls.c` exercises through a running proxy: the rest of
/// the host functions, WASI, properties, trailers, the order of every callback, and the end
/// of a retired root context.
extension ProxyE2E {
    @Suite struct PluginHostCallsE2ETests {
        static let config = """
            plugins:
              - name: hc
                path: "{plugin:hostcalls}"
                root_id: hc-root
                environment: {GREETING: hello}
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
            routes:
              - {id: user, path: "/users/{id}", upstream: app, plugins: [hc]}
              - {id: all, upstream: app, plugins: [hc]}
            """

        @Test func hostFunctionsWASIAndProperties() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/host?q=1", headers: ["X-Probe: 1"]))
                func value(_ name: String) -> String? { echoed.values(name).first }
                #expect(value("x-log-level") == "0", "the harness logs plugins at trace")
                #expect(value("x-clocks-agree") == "yes" && value("x-monotonic") == "yes")
                #expect(value("x-map-size-matches") == "yes")
                #expect(value("x-set-property") == "0" && value("x-my-note") == "kept", "a stored property reads back")
                #expect(value("x-set-builtin") == "2", "loom's own properties are read-only (BAD_ARGUMENT)")
                #expect(value("x-gauge") == "42" && value("x-counter-positive") == "yes")
                #expect(value("x-histogram-record") == "0" && value("x-unknown-metric") == "2")
                #expect(value("x-env-greeting") == "hello" && value("x-env-home") == "(none)", "the plugin's environment, never loom's")
                #expect(value("x-argc") == "0")
                #expect(value("x-random-status") == "0" && value("x-random-filled") == "yes")
                #expect(value("x-yield") == "0" && value("x-sleep") == "0", "sched_yield and a clock poll_oneoff succeed")
                #expect(value("x-fd-sync") == "58", "ENOTSUP for what a plugin host does not offer")
                #expect(value("x-grpc-call") == "2", "BAD_ARGUMENT: app speaks HTTP/1.1, and gRPC needs HTTP/2")
                #expect(value("x-source-address")?.hasPrefix("127.0.0.1:") == true)
                #expect(value("x-destination-address") == "127.0.0.1:\(proxy.port)")
                #expect(value("x-plugin-name") == "hc" && value("x-plugin-root-id") == "hc-root")
                #expect(value("x-request-path") == "/host?q=1" && value("x-request-method") == "GET")
                #expect(value("x-request-headers-has-probe") == "yes", "request.headers is a map of the fields")

                let user = try EchoedRequest(proxy.get("/users/42"))
                #expect(user.values("x-route-parameters-has-id") == ["yes"], "route.parameters is a map by name")
            }
        }

        @Test func procExitFailsTheRequestAndLocalStatusesAreChecked() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                #expect(try proxy.get("/exit").status == 500)
                #expect(proxy.pluginMessages.contains { $0.contains("proc_exit(3)") }, "\(proxy.pluginMessages)")
                let statuses = try proxy.get("/status-local")
                #expect(statuses.status == 200, "the refused local responses left the request going on")
                let echoed = try EchoedRequest(statuses)
                #expect(echoed.values("x-status-99") == ["2"] && echoed.values("x-status-600") == ["2"])
            }
        }

        /// Every callback of a request with a body and trailers both ways, in Envoy's order;
        /// the plugin reads the request's trailers and changes the response's.
        @Test func callbacksInOrderWithTrailers() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let client = try RawClient(port: proxy.port, timeout: 2)
                try client.send(
                    "POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 7\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                let (rest, _) = client.readToEnd()
                let text = String(decoding: rest, as: UTF8.self)
                #expect(text.contains("X-Upstream-Trailer: t1\r\n") || text.lowercased().contains("x-upstream-trailer: t1\r\n"), "\(text)")
                #expect(text.lowercased().contains("x-plugin-trailer: seen-t1\r\n"), "\(text)")
                #expect(!text.lowercased().contains("x-secret-trailer"), "the plugin removed it: \(text)")
                let messages = { proxy.pluginMessages }
                #expect(await E2E.eventually { messages().contains { $0.hasPrefix("order ") } })
                #expect(messages().contains("request trailer x-checksum=7, 1 fields, change status 2"), "read-only request trailers: \(messages())")
                #expect(
                    messages().contains(
                        "order create,request_headers,request_body,request_trailers,response_headers,response_body,response_trailers,done,log,delete"),
                    "\(messages())")
            }
        }

        /// A reload retires the plugin's instances: each root context gets `on_done`; one that
        /// answers false finishes its work (an HTTP call here) and calls `proxy_done`, and only
        /// then gets `on_delete`. One that answers true is deleted at once.
        @Test func aRetiredRootContextFinishesItsWorkThenIsDeleted() async throws {
            let module = try PluginFixtures.path("hostcalls")
            try await ReloadFixture.with(backends: 1) { fixture in
                func text(plugin config: String?) -> String {
                    guard let config else { return fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n", upstreams: fixture.appUpstream) }
                    return "plugins:\n  - name: hc\n    path: \(module)\n    config: \(config)\n"
                        + fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n    plugins: [hc]\n", upstreams: fixture.appUpstream)
                }
                func count(_ predicate: (String) -> Bool) -> Int { fixture.pluginMessages.filter(predicate).count }
                try fixture.write(text(plugin: "linger"))
                try await fixture.start()
                #expect(try fixture.get("/echo").status == 200)
                #expect(count { $0 == "root done" } == 0, "a running plugin's root context is not ended")

                // The configuration changes: both event loops' old instances end, after their call.
                try fixture.write(text(plugin: "plain"))
                guard case .applied = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the plugin change was not applied")
                    return
                }
                #expect(await E2E.eventually { count { $0 == "root deleted" } == 2 }, "\(fixture.pluginMessages)")
                #expect(count { $0 == "root lingers (call status 0)" } == 2)
                #expect(count { $0.hasPrefix("root call answered with ") && $0.hasSuffix("status 0; proxy_done 0; again 1") } == 2,
                        "proxy_done is OK once, then NOT_FOUND: \(fixture.pluginMessages)")
                let messages = fixture.pluginMessages
                let firstAnswer = try #require(messages.firstIndex { $0.hasPrefix("root call answered") })
                #expect(messages.firstIndex(of: "root deleted").map { $0 > firstAnswer } == true, "on_delete waits for proxy_done")
                #expect(fixture.backends[0].requestURIs.withLockedValue { $0 }.filter { $0 == "/called" }.count == 2)

                // The plugin goes: the "plain" instances answer on_done with true and are deleted at once.
                try fixture.write(text(plugin: nil))
                guard case .applied = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the plugin removal was not applied")
                    return
                }
                #expect(await E2E.eventually { count { $0 == "root deleted" } == 4 }, "\(fixture.pluginMessages)")
                #expect(count { $0 == "root done" } == 4 && count { $0.hasPrefix("root lingers") } == 2)
                #expect(try fixture.get("/echo").status == 200)
            }
        }
    }
}
