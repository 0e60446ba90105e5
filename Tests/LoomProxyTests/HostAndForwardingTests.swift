import Foundation
import LoomConfig
import NIOCore
import NIOPosix
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// The Host the upstream sees is the one Loom routed on, and forwarding headers from
    /// untrusted clients never reach the upstream (regressions found in review).
    @Suite(.serialized) struct HostAndForwardingTests {
        /// `admin.internal` is answered 403 by Loom; everything else goes to the backend.
        static func hostGuard(_ config: inout LoomConfiguration) {
            config.routes.insert(
                RouteConfig(name: "deny-admin", match: RouteMatch(host: "admin.internal"),
                            action: .respond(StaticResponse(status: 403, body: "no"))), at: 0)
        }

        @Test func absoluteFormTargetDecidesHostForRoutingAndUpstreamAlike() async throws {
            try await E2E.withBackend(configure: Self.hostGuard) { _, proxy in
                // Routed as public.example (the authority wins, RFC 9112 §3.2.2) …
                let response = try proxy.request("GET http://public.example/echo HTTP/1.1\r\nHost: admin.internal\r\n\r\n")
                #expect(response.status == 200)
                // … and the upstream is told the same host, not the Host field.
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("host") == ["public.example"])
                #expect(echoed.uri == "/echo")
                // The reverse: an absolute-form target naming the guarded host is guarded.
                let denied = try proxy.request("GET http://admin.internal/echo HTTP/1.1\r\nHost: public.example\r\n\r\n")
                #expect(denied.status == 403)
            }
        }

        /// `//admin`, `/%61dmin` and `/x/../admin` are all `/admin` to a backend: none may
        /// slip past a rule on `/admin`, and the backend receives the normalized path.
        @Test func pathsAreNormalizedBeforeRoutingAndForwardedNormalized() async throws {
            try await E2E.withBackend(configure: { config in
                config.routes.insert(
                    RouteConfig(name: "deny-admin", match: RouteMatch(path: .prefix("/admin")),
                                action: .respond(StaticResponse(status: 403, body: "no"))), at: 0)
            }) { _, proxy in
                #expect(try proxy.get("//admin/secret").status == 403)
                #expect(try proxy.get("/%61dmin/secret").status == 403)
                #expect(try proxy.get("/x/../admin/secret").status == 400)
                let echoed = try EchoedRequest(proxy.get("/echo//%7Euser/a%2Fb?q=%61"))
                #expect(echoed.uri == "/echo/~user/a%2Fb?q=%61")
            }
        }

        /// WarpDrive's complete example sets X-Forwarded-Host with `add_headers`.
        @Test func configuredForwardingFieldReplacesTheGeneratedOne() async throws {
            let route = RouteConfig(
                name: "www", match: RouteMatch(path: .prefix("/")), action: .proxy(upstream: "backend"),
                addRequestHeaders: [HeaderPair(name: "X-Forwarded-Host", value: "www.example.com"), HeaderPair(name: "X-Extra", value: "1")])
            try await E2E.withBackend(route: route) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/echo"))
                #expect(echoed.values("x-forwarded-host") == ["www.example.com"])
                #expect(echoed.values("x-forwarded-for") == ["127.0.0.1"])
                #expect(echoed.values("x-extra") == ["1"])
            }
        }

        /// An IPv6 upstream works, and the Host naming it is bracketed (RFC 3986 §3.2.2).
        @Test func ipv6UpstreamWithEndpointHost() async throws {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let backend = TestBackend(group: group)
            try await backend.start(host: "::1")
            let config = ProxyHarness.config(endpoints: [.tcp(host: "::1", port: backend.port)]) {
                $0.server.forwarding.preserveHost = false
            }
            do {
                try await E2E.withProxy(config) { proxy in
                    let echoed = try EchoedRequest(proxy.get("/echo"))
                    #expect(echoed.values("host") == ["[::1]:\(backend.port)"])
                }
            } catch {
                await backend.stop()
                try? await group.shutdownGracefully()
                throw error
            }
            await backend.stop()
            try? await group.shutdownGracefully()
        }

        @Test func connectionTokensCannotRemoveHost() async throws {
            try await E2E.withBackend { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/echo", headers: ["Connection: host, content-length"]))
                #expect(echoed.values("host") == ["test.local"])
            }
        }

        @Test func untrustedForwardingFieldsAreDroppedEvenWhenLoomAddsNone() async throws {
            try await E2E.withBackend(configure: { $0.server.forwarding.xForwarded = false }) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/echo", headers: [
                    "Forwarded: for=6.6.6.6", "X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil.example",
                ]))
                #expect(!echoed.has("forwarded"))
                #expect(!echoed.has("x-forwarded-for"))
                #expect(!echoed.has("x-forwarded-host"))
            }
        }

        @Test func trustedForwardingFieldsPassUnchangedWhenLoomAddsNone() async throws {
            try await E2E.withBackend(configure: {
                $0.server.forwarding.xForwarded = false
                $0.server.forwarding.trustedProxies = [AddressBlock("127.0.0.0/8")!]
            }) { _, proxy in
                let echoed = try EchoedRequest(proxy.get("/echo", headers: ["Forwarded: for=10.0.0.1", "X-Forwarded-For: 10.0.0.1"]))
                #expect(echoed.values("forwarded") == ["for=10.0.0.1"])
                #expect(echoed.values("x-forwarded-for") == ["10.0.0.1"])
            }
        }

        @Test func viaNamesTheReceivedVersionAndDateIsAddedWhenMissing() async throws {
            try await E2E.withBackend { _, proxy in
                let response = try proxy.request("GET /echo HTTP/1.0\r\nHost: test.local\r\n\r\n")
                let echoed = try EchoedRequest(response)
                #expect(echoed.values("via") == ["1.0 loom"])
                // The backend (NIOHTTP1) sends no Date; the client gets one, and Via 1.1 for
                // the upstream hop.
                #expect(response.header("date") != nil)
                #expect(response.headers("via") == ["1.1 loom"])
            }
        }
    }
}

/// Who the client is for filters: `TrustedProxies.originalClient`.
@Suite struct OriginalClientTests {
    let proxies = TrustedProxies([AddressBlock("10.0.0.0/8")!])
    let trustedPeer = try! SocketAddress(ipAddress: "10.0.0.1", port: 1)
    let untrustedPeer = try! SocketAddress(ipAddress: "192.0.2.1", port: 1)

    @Test func untrustedPeersAreTheClient() {
        #expect(proxies.originalClient(peer: untrustedPeer, peerText: "192.0.2.1", forwardedFor: ["198.51.100.7"]) == "192.0.2.1")
    }

    @Test func trustedPeersAreSeenThrough() {
        func client(_ lines: [String]) -> String? { proxies.originalClient(peer: trustedPeer, peerText: "10.0.0.1", forwardedFor: lines) }
        #expect(client([]) == "10.0.0.1")
        #expect(client(["198.51.100.7"]) == "198.51.100.7")
        #expect(client(["198.51.100.7, 10.2.2.2"]) == "198.51.100.7", "trusted hops are skipped")
        #expect(client(["203.0.113.1, 198.51.100.7"]) == "198.51.100.7", "the nearest untrusted hop")
        #expect(client(["203.0.113.1", "198.51.100.7"]) == "198.51.100.7", "every line, in order")
        #expect(client(["198.51.100.7:5678"]) == "198.51.100.7")
        #expect(client(["[2001:db8::1]:443"]) == "2001:db8::1")
        #expect(client(["2001:db8::1"]) == "2001:db8::1")
        #expect(client(["10.3.3.3, 10.2.2.2"]) == "10.3.3.3", "all trusted: the leftmost")
        #expect(client(["unknown"]) == nil, "not an address: unknown, never the proxy")
        #expect(client(["198.51.100.7, garbage"]) == nil)
    }
}
