import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// Proxy-Wasm plugins through a running proxy: a C plugin built with wasi-libc exercises
/// the host's header maps, properties, local responses, bodies, shared data, metrics, WASI
/// output, and isolation (traps, runaway loops, memory growth, bad pointers).
extension ProxyE2E {
    @Suite struct PluginE2ETests {
        static let config = """
            plugins:
              - name: headers
                path: "{plugin:headers}"
                vm_config: vm-settings
                config: {mode: test}
                timeout: 50ms
                memory_limit: 8MB
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
            routes: [{id: all, upstream: app, plugins: [headers]}]
            """

        @Test func requestAndResponseHeadersPassThroughThePlugin() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { backends, proxy in
                let response = try proxy.get("/hello", headers: ["X-Remove-Me: 1", "X-Request-ID: abc-123"])
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("x-plugin") == ["c"])
                #expect(echoed.values("x-plugin-config") == [#"{"mode":"test"}"#])
                #expect(!echoed.has("x-remove-me"))
                #expect(echoed.values("x-plugin-request-id") == ["abc-123"])
                #expect(echoed.values("x-plugin-route") == ["all"])
                #expect(echoed.values("x-foreign-status") == ["1"], "unknown foreign functions are NOT_FOUND")
                #expect(response.header("x-plugin-response") == "c")
                #expect(response.header("x-upstream-status") == "200")
                #expect(response.header("x-upstream-address") == "127.0.0.1:\(backends[0].port)", "upstream.address")
                #expect(response.header("x-upstream-port") == "\(backends[0].port)", "upstream.port, an 8-byte integer")

                let upper = try proxy.get("/upper?bytes=10")
                #expect(String(decoding: upper.body, as: UTF8.self).contains("\"METHOD\""), "the plugin upper-cased the body")
                #expect(upper.header("content-length") == nil && upper.header("transfer-encoding") == "chunked")
            }
        }

        /// The route's path parameters and wildcard remainder as `route.*` properties.
        @Test func routeCapturesAreProperties() async throws {
            let config = Self.config.replacingOccurrences(
                of: "routes: [{id: all, upstream: app, plugins: [headers]}]",
                with: #"routes: [{id: user, path: "/users/{id}/*", upstream: app, plugins: [headers]}, {id: all, upstream: app, plugins: [headers]}]"#)
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let user = try EchoedRequest(proxy.get("/users/42/orders/7?x=1"))
                #expect(user.values("x-plugin-route") == ["user"])
                #expect(user.values("x-plugin-param-id") == ["42"])
                #expect(user.values("x-plugin-remainder") == ["/orders/7"])
                let other = try EchoedRequest(proxy.get("/hello"))
                #expect(other.values("x-plugin-route") == ["all"])
                #expect(!other.has("x-plugin-param-id"), "NOT_FOUND without the parameter")
                #expect(other.values("x-plugin-remainder") == ["/hello"], "the catch-all's wildcard matched the whole path")
            }
        }

        @Test func localResponsesBodiesAndRewrites() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { backends, proxy in
                let denied = try proxy.get("/deny")
                #expect(denied.status == 403 && String(decoding: denied.body, as: UTF8.self) == "denied by plugin")
                #expect(denied.header("x-denied") == "yes" && denied.header("content-length") == "16")
                #expect(backends[0].requestURIs.withLockedValue { $0 }.isEmpty, "a local response never reaches the upstream")

                let body = String(repeating: "b", count: 100_000)
                let appended = try proxy.request("POST /append HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                let echoed = try EchoedRequest(appended)
                #expect(echoed.bodyBytes == body.utf8.count + 7 && echoed.checksum == E2E.checksum(Array((body + "+plugin").utf8)),
                        "the plugin held the body until its end, then appended to it")

                let rewritten = try EchoedRequest(proxy.get("/rewrite-me"))
                #expect(rewritten.uri == "/echo?rewritten=1", "a :path set by the plugin is the target sent upstream")

                // An :authority (or Host) set by the plugin is the Host sent upstream, once.
                let authority = try EchoedRequest(proxy.get("/authority"))
                #expect(authority.values("Host") == ["api.internal:8443"] && authority.uri == "/authority", "\(authority.headers)")
                let host = try EchoedRequest(proxy.get("/host-field"))
                #expect(host.values("Host") == ["other.example"], "\(host.headers)")
                let badAuthority = try proxy.get("/bad-authority")
                #expect(badAuthority.status == 500, "userinfo is not a host: a plugin failure")

                // proxy_close_stream resets the stream, as in Envoy: no answer, the
                // connection closed, the upstream never asked.
                for path in ["/close", "/close-response", "/answer-late"] {
                    let client = try RawClient(port: proxy.port, timeout: 5)
                    try client.send("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
                    let (text, closed) = client.readUntilClose()
                    // Nothing, or (a reset during the body) a chunked response cut short.
                    #expect(closed && !text.hasSuffix("0\r\n\r\n"), "\(path): \(text)")
                }
                #expect(!backends[0].requestURIs.withLockedValue { $0 }.contains("/close"))
                // Logged with status 0 (nothing answered; 200 when the head had gone) and why.
                let resets = ["/close", "/close-response", "/answer-late"]
                #expect(await E2E.eventually {
                    let entries = proxy.logs.all.filter { resets.contains($0["path"]?.description ?? "") }
                    return entries.map { $0["status"]?.description } == ["0", "0", "200"]
                        && entries.allSatisfy { $0["error"]?.description == "stream reset by plugin headers" }
                }, "\(proxy.logs.all.filter { resets.contains($0["path"]?.description ?? "") })")

                // The connection ends after what was answered before the reset, with a FIN,
                // then a linger that swallows what the client still sends: a pipelined
                // response ahead of the reset arrives whole.
                let pipelined = try RawClient(port: proxy.port, timeout: 5)
                try pipelined.send("GET /before HTTP/1.1\r\nHost: a\r\n\r\nGET /close HTTP/1.1\r\nHost: a\r\n\r\n")
                for _ in 0..<20 {
                    try await Task.sleep(for: .milliseconds(20))
                    try? pipelined.send(String(repeating: "x", count: 1024))
                }
                let (answered, ended) = pipelined.readUntilClose()
                #expect(ended && answered.hasPrefix("HTTP/1.1 200") && answered.hasSuffix("\r\n0\r\n\r\n"), "\(answered)")

                // A local response from a body callback is sent as the plugin wrote it.
                let refused = try proxy.request("POST /refuse-body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
                #expect(refused.status == 403 && refused.bodyText == "body refused" && refused.header("x-denied-body") == "yes")
                #expect(refused.header("content-length") == "12")
            }
        }

        /// Over HTTP/2, a reset is the stream's alone: the connection serves the next one.
        @Test func aResetOverHTTP2IsTheStreamsAlone() async throws {
            let config = "listeners: [{name: h, address: \"127.0.0.1:0\", protocol: h2c}]\n" + Self.config
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let result = try E2E.run("/usr/bin/timeout", ["10", "/usr/bin/nghttp", "-v", "http://127.0.0.1:\(proxy.port)/close", "http://127.0.0.1:\(proxy.port)/after"])
                let text = String(decoding: result.stdout, as: UTF8.self)
                // nghttp's requests are streams 13 and 15 (after its priority streams).
                #expect(text.contains("recv RST_STREAM frame <length=4, flags=0x00, stream_id=13>"), "\(text)")
                #expect(text.contains("recv (stream_id=15) :status: 200") && !text.contains("recv GOAWAY"), "\(text)")
            }
        }

        /// A body the plugin holds while it pauses is bounded: past 1 MiB the request is
        /// refused with 413 rather than buffered without end.
        @Test func aHeldBodyIsBounded() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let body = String(repeating: "b", count: 1024 * 1024 + 100_000)
                let response = try proxy.request("POST /append HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                #expect(response.status == 413)
                #expect(try proxy.get("/after").status == 200)

                // A held response body past the bound: its head has gone, so the connection
                // is cut before the body ends, and the failure is in the access log.
                let client = try RawClient(port: proxy.port, timeout: 5)
                try client.send("GET /stream?bytes=1200000&hold=1 HTTP/1.1\r\nHost: a\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                let (rest, _) = client.readToEnd()
                #expect(!String(decoding: rest.suffix(5), as: UTF8.self).hasSuffix("0\r\n\r\n"), "the body never ended")
                #expect(rest.count < 1_000_000)
                #expect(await E2E.eventually {
                    proxy.logs.all.contains { ($0["error"]).map { "\($0)".contains("held more than 1048576 bytes of the response body") } ?? false }
                }, "\(proxy.logs.all.suffix(2))")
                #expect(try proxy.get("/after").status == 200)
            }
        }

        @Test func hostCallsRefuseBadPointersAndHeaderInjection() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let oob = try EchoedRequest(proxy.get("/oob"))
                #expect(oob.values("x-oob-status") == ["6"], "INVALID_MEMORY_ACCESS, and the gateway is fine")
                let inject = try EchoedRequest(proxy.get("/inject"))
                #expect(inject.values("x-inject-status") == ["2"], "BAD_ARGUMENT for a value with CR LF")
                #expect(!inject.has("x-evil") && !inject.has("x-smuggled"))

                let framing = try proxy.get("/framing")
                #expect(framing.status == 200)
                let echoed = try EchoedRequest(framing)
                #expect(!echoed.has("transfer-encoding") && !echoed.has("content-length") && echoed.values("x-plugin") == ["c"],
                        "framing fields stay loom's: \(echoed.headers)")
                #expect(proxy.pluginMessages.contains { $0.contains("changes to transfer-encoding, content-length, connection ignored") })
            }
        }

        /// Traps, runaway loops and memory growth fail only their request (500), are logged,
        /// and the instance is replaced: the next request is served normally.
        @Test func failuresAreIsolatedAndTheInstanceReplaced() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                for path in ["/trap", "/loop", "/grow", "/trap-response"] {
                    let failed = try proxy.get(path)
                    #expect(failed.status == 500, "\(path)")
                    #expect(E2E.jsonRequestID(failed) != nil)
                    let next = try proxy.get("/after")
                    let echoed = try EchoedRequest(next)
                    #expect(next.status == 200 && echoed.values("x-plugin") == ["c"], "after \(path)")
                }
                let messages = proxy.pluginMessages.joined(separator: "\n")
                #expect(messages.contains("unreachable"), "\(messages)")
                #expect(messages.contains("time budget"), "\(messages)")
            }
        }

        /// `memory_limit` (8MB here) is where `memory.grow` starts to fail: the guest's
        /// allocator gets at most that much, whatever it asks for.
        @Test func memoryLimitCapsGrowth() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/grow-count"))
                let mebibytes = try #require(echoed.values("x-grown-mib").first.flatMap { Int($0) })
                #expect(mebibytes >= 1 && mebibytes < 8, "got \(mebibytes) MiB under an 8MB limit")
            }
        }

        /// A small trapping module (`trap.wat`): each trap replaces the instance.
        @Test func aThousandTrapsInARowAndTheGatewayStillServes() async throws {
            let config = """
                plugins: [{name: trap, path: "{plugin:trap}"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: trap, path: /trap, upstream: app, plugins: [trap]}, {id: all, upstream: app}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let client = try RawClient(port: proxy.port)
                for _ in 0..<1000 {
                    try client.send("GET /trap HTTP/1.1\r\nHost: a\r\n\r\n")
                    let response = try client.readResponse()
                    guard response.status == 500 else {
                        Issue.record("a trap answered \(response.status)")
                        return
                    }
                }
                #expect(try proxy.get("/fine").status == 200)
                let runtime = try #require(proxy.engine.store.current.plugins.runtimes["trap"])
                #expect(runtime.replacedInstances >= 999)
            }
        }

        @Test func commandModulesWithMallocAndABI020() async throws {
            let config = """
                plugins: [{name: command, path: "{plugin:command}"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app, plugins: [command]}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/"))
                #expect(echoed.values("x-command") == ["started"], "_start ran before the first callback")
            }
        }

        @Test func reactorsRunMainAfterInitialize() async throws {
            let config = """
                plugins: [{name: reactor, path: "{plugin:reactor_main}"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app, plugins: [reactor]}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/"))
                #expect(echoed.values("x-started") == ["initialize,main"])
            }
        }

        /// Modules built by older toolchains import WASI as `wasi_unstable`.
        @Test func wasiUnstableImportsWork() async throws {
            let config = """
                plugins: [{name: unstable, path: "{plugin:wasi_unstable}"}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app, plugins: [unstable]}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let response = try proxy.get("/")
                #expect(response.status == 200)
                #expect(proxy.pluginMessages.contains("hello from wasi_unstable"), "\(proxy.pluginMessages)")
            }
        }

        @Test func failOpenLetsTheRequestThroughUnchanged() async throws {
            let config = Self.config.replacingOccurrences(of: "timeout: 50ms", with: "timeout: 50ms\n    fail_open: true")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                // A trap, a call over its time budget, memory past its limit.
                for path in ["/trap", "/loop", "/grow", "/trap-response"] {
                    let response = try proxy.get(path)
                    #expect(response.status == 200, "\(path)")
                    let echoed = try EchoedRequest(response)
                    // A failure in the response phase comes after the request's changes.
                    #expect(echoed.uri == path && (path == "/trap-response" || !echoed.has("x-plugin")), "\(path) went through unchanged")
                    #expect(response.header("x-plugin-response") == nil)
                }
                #expect(proxy.pluginMessages.filter { $0.contains("failed") }.count >= 4, "each failure is logged: \(proxy.pluginMessages)")
            }
        }

        /// Shared data and metrics live per plugin name for the life of the process, so this
        /// test's plugin has a name of its own.
        @Test func lifecycleLogsSharedDataAndMetrics() async throws {
            let config = "server: {worker_threads: 2}\n" + Self.config.replacingOccurrences(of: "name: headers", with: "name: counting")
                .replacingOccurrences(of: "plugins: [headers]", with: "plugins: [counting]")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                // Each request says which instance counted it and the count it saw.
                var counted: [(instance: Int, count: Int)] = []
                for index in 0..<20 {
                    let pair = try EchoedRequest(proxy.get("/count/\(index)")).values("x-counted-by").first?.split(separator: " ").compactMap { Int($0) }
                    if let pair, pair.count == 2 { counted.append((pair[0], pair[1])) }
                }
                #expect(Set(counted.map(\.instance)).count == 2, "both loops' instances served: \(counted)")
                #expect(counted.map(\.count) == Array(1...20), "each saw the other's increments: \(counted)")
                #expect(await E2E.eventually { proxy.pluginMessages.filter { $0.hasPrefix("logged /count/") }.count == 20 },
                        "on_log ran for every request, with its response code: \(proxy.pluginMessages)")
                #expect(proxy.pluginMessages.contains("logged /count/3 200"))
                #expect(proxy.pluginMessages.contains("vm started with 11 bytes of vm_config"), "WASI stdout goes to the log")
                let plugin = try #require(proxy.engine.store.current.plugins.runtimes["counting"]?.plugin)
                #expect(plugin.sharedCount("count") == 20)
                #expect(plugin.metricValue("c_requests_total") == 20)
            }
        }

        /// A Rust plugin (std, hand-written bindings): replaces the whole request map without
        /// the pseudo-headers, which the host keeps, so the request line survives.
        @Test func aRustPluginReplacesTheMapAndKeepsTheRequestLine() async throws {
            let config = """
                plugins: [{name: rust, path: "{plugin:rust_headers}", config: from-config}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: rusty, upstream: app, plugins: [rust]}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let response = try proxy.get("/some/path?q=1", headers: ["X-Drop: 1", "X-Keep: 2"])
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.uri == "/some/path?q=1" && echoed.method == "GET")
                #expect(echoed.values("x-rust") == ["from-config"])
                #expect(echoed.values("x-rust-path") == ["/some/path?q=1"] && echoed.values("x-rust-route") == ["rusty"])
                #expect(echoed.values("x-rust-stream").first?.hasSuffix("of root 1") == true, "the stream's parent is the root context")
                #expect(!echoed.has("x-drop") && echoed.values("x-keep") == ["2"])
                #expect(proxy.pluginMessages.contains("rust plugin configured with from-config"))
            }
        }
    }
}
