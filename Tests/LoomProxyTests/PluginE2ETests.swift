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
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
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

                let upper = try proxy.get("/upper?bytes=10")
                #expect(String(decoding: upper.body, as: UTF8.self).contains("\"METHOD\""), "the plugin upper-cased the body")
                #expect(upper.header("content-length") == nil && upper.header("transfer-encoding") == "chunked")
            }
        }
    }
}
