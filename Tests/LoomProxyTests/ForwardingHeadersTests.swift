import Foundation
import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// What the backend sees of a forwarded request: forwarding headers, request ids,
    /// hop-by-hop removal, Host handling, route edits; plus response-side header handling.
    @Suite(.serialized) struct ForwardingHeadersTests {
        @Test func untrustedClientForwardedForIsReplaced() async throws {
            try await E2E.withBackend { _, proxy in
                let response = try proxy.get("/echo", headers: ["X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https",
                                                              "X-Forwarded-Host: evil.example", "X-Forwarded-Port: 1"])
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("x-forwarded-for") == ["127.0.0.1"])
                #expect(echoed.values("x-forwarded-proto") == ["http"])
                #expect(echoed.values("x-forwarded-host") == ["test.local"])
                #expect(echoed.values("x-forwarded-port") == [String(proxy.port)])
                #expect(echoed.values("via") == ["1.1 loom"])
                #expect(response.headers("via") == ["1.1 loom"])
                // RFC 7239 Forwarded is off by default, and a client's own is not passed on.
                #expect(!echoed.has("forwarded"))
            }
        }

        @Test func trustedClientForwardedForIsAppended() async throws {
            try await E2E.withBackend(configure: { $0.server.forwarding.trustedProxies = [AddressBlock("127.0.0.1")!] }) { _, proxy in
                let response = try proxy.get("/echo", headers: ["X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https"])
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("x-forwarded-for") == ["1.2.3.4, 127.0.0.1"])
                #expect(echoed.values("x-forwarded-proto") == ["https"])
            }
        }

        @Test func rfc7239ForwardedOnlyWhenEnabled() async throws {
            try await E2E.withBackend(configure: { $0.server.forwarding.forwarded = true }) { _, proxy in
                let response = try proxy.get("/echo", headers: ["Forwarded: for=6.6.6.6"])
                let echoed = try EchoedRequest(response)
                // The untrusted client's own element is dropped; ours describes it.
                #expect(echoed.values("forwarded") == ["for=127.0.0.1;host=\"test.local\";proto=http"])
            }
        }

        @Test func requestIDGeneratedWhenAbsentAndSameBothWays() async throws {
            try await E2E.withBackend { _, proxy in
                let response = try proxy.get("/echo")
                let id = try #require(response.header("x-request-id"))
                #expect(id.count == 32)
                #expect(id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("x-request-id") == [id])
                #expect(response.headers("x-request-id").count == 1)
            }
        }

        @Test func wellFormedRequestIDKeptMalformedReplaced() async throws {
            try await E2E.withBackend { _, proxy in
                let kept = try proxy.get("/echo", headers: ["X-Request-ID: trace-1234.abc:DEF_5"])
                #expect(kept.header("x-request-id") == "trace-1234.abc:DEF_5")
                #expect(try EchoedRequest(kept).values("x-request-id") == ["trace-1234.abc:DEF_5"])

                let replaced = try proxy.get("/echo", headers: ["X-Request-ID: bad id with spaces"])
                let id = try #require(replaced.header("x-request-id"))
                #expect(id != "bad id with spaces")
                #expect(id.count == 32)
                #expect(try EchoedRequest(replaced).values("x-request-id") == [id])
            }
        }

        @Test func hopByHopFieldsAreNotForwarded() async throws {
            try await E2E.withBackend { _, proxy in
                let response = try proxy.request(
                    "GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
                        + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\nX-Secret: 1\r\nX-Kept: yes\r\n\r\n")
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                for name in ["keep-alive", "proxy-connection", "te", "upgrade", "x-secret"] {
                    #expect(!echoed.has(name), "\(name) was forwarded")
                }
                // The proxy's own hop to the backend may carry its own Connection field, but
                // never the client's tokens.
                #expect(!echoed.values("connection").contains { $0.lowercased().contains("x-secret") })
                #expect(echoed.values("x-kept") == ["yes"])
            }
        }

        @Test func hostPreservedByDefault() async throws {
            try await E2E.withBackend { _, proxy in
                let echoed = try EchoedRequest(try proxy.get("/echo"))
                #expect(echoed.values("host") == ["test.local"])
            }
        }

        @Test func preserveHostFalseSendsEndpointAuthority() async throws {
            try await E2E.withBackend(configure: { $0.server.forwarding.preserveHost = false }) { backend, proxy in
                let echoed = try EchoedRequest(try proxy.get("/echo"))
                #expect(echoed.values("host") == ["127.0.0.1:\(backend.port)"])
                #expect(echoed.values("x-forwarded-host") == ["test.local"])
            }
        }

        @Test func setCookieValuesKeptInOrder() async throws {
            try await E2E.withBackend { _, proxy in
                let response = try proxy.get("/cookies")
                #expect(response.status == 200)
                #expect(response.headers("set-cookie") == ["a=1; Path=/", "b=2; Path=/", "c=3; Path=/"])
            }
        }

        @Test func stripPrefixAndAddHeaders() async throws {
            let route = RouteConfig(
                name: "api", match: RouteMatch(path: .prefix("/api")), action: .proxy(upstream: "backend"),
                stripPrefix: true,
                addRequestHeaders: [HeaderPair(name: "X-Added", value: "one"), HeaderPair(name: "X-Kept", value: "route")])
            try await E2E.withBackend(route: route) { _, proxy in
                let response = try proxy.get("/api/echo?x=1&y=%20", headers: ["X-Kept: client"])
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.uri == "/echo?x=1&y=%20")
                #expect(echoed.values("x-added") == ["one"])
                // add_headers append: the client's value stays, the route's follows.
                #expect(echoed.values("x-kept") == ["client", "route"])
            }
        }

        @Test func unixSocketUpstream() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-e2e-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("backend.sock").path
            try await E2E.withBackend(unixPath: path) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                for index in 0..<3 {
                    try client.send("POST /echo?u=\(index) HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\n\r\nhello")
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    let echoed = try EchoedRequest(response)
                    #expect(echoed.uri == "/echo?u=\(index)")
                    #expect(echoed.bodyBytes == 5)
                    #expect(echoed.values("host") == ["test.local"])
                }
                #expect(backend.connectionsAccepted == 1)
            }
        }
    }
}
