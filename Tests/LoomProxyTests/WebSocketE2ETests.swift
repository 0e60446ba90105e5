import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// WebSocket through a running proxy: Python's `websockets` as server and client
/// (Fixtures/ws_peer.py), and `RawBackend`/`RawClient` for answers and endings a real peer
/// would not produce on cue.
extension ProxyE2E {
    @Suite struct WebSocketE2ETests {
        static func script() throws -> String { try E2E.fixture("ws_peer") }

        /// One upstream `ws` (the ws_peer.py server's port is `{ws}`) and a catch-all route.
        static let plain = """
            upstreams: [{name: ws, endpoints: ["127.0.0.1:{ws}"]}]
            routes: [{id: ws, path: /*, upstream: ws}]
            """

        /// ws_peer.py's server, and loom in front of it for `yaml`.
        static func withServer(_ yaml: String = Self.plain, metrics: LoomMetrics? = nil, _ body: (ProxyHarness) async throws -> Void) async throws {
            try await E2E.withFixtureServer("ws_peer", yaml: yaml.replacingOccurrences(of: "{ws}", with: "{port}"), metrics: metrics, body)
        }

        /// Runs a ws_peer.py client scenario; returns the JSON object it printed.
        static func client(_ url: String, _ scenario: String, _ extra: [String] = []) throws -> [String: Any] {
            let result = try E2E.run("python3", [try script(), "client", url, scenario] + extra)
            let json = (try? JSONSerialization.jsonObject(with: result.stdout)) as? [String: Any] ?? [:]
            #expect(result.status == 0 && json["ok"] as? Bool == true, "\(String(decoding: result.stdout, as: UTF8.self)) \(result.stderr)")
            return json
        }

        /// Whether the engine's count of open WebSockets reaches `count` within 5 s.
        static func openTunnels(_ proxy: ProxyHarness, become count: Int) async -> Bool {
            for _ in 0..<250 {
                if await proxy.engine.sample().openTunnels == count { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }

        /// The access-log line of the WebSocket that ended (status 101).
        static func tunnelLog(_ proxy: ProxyHarness) async -> [String: String]? {
            _ = await E2E.eventually { proxy.logs.all.contains { $0["status"]?.description == "101" } }
            return proxy.logs.all.first { $0["status"]?.description == "101" }?.mapValues(\.description)
        }

        @Test func messagesCrossBothWaysAndTheCloseHandshakePasses() async throws {
            let metrics = LoomMetrics()
            try await Self.withServer(metrics: metrics) { proxy in
                let seen = try Self.client("ws://127.0.0.1:\(proxy.port)/echo", "echo")
                #expect(seen["close_code"] as? Int == 1000)
                // The handshake reached the server as an upgrade, with loom's forwarding fields,
                // and its answer came back with the upgrade fields kept.
                let request = seen["request_headers"] as? [String: String] ?? [:]
                #expect(request["upgrade"] == "websocket" && request["connection"] == "upgrade", "\(request)")
                #expect(request["x-forwarded-for"] == "127.0.0.1" && request["sec-websocket-key"] != nil && request["via"] == "1.1 loom")
                let response = seen["response_headers"] as? [String: String] ?? [:]
                #expect(response["upgrade"] == "websocket" && response["connection"] == "upgrade" && response["sec-websocket-accept"] != nil, "\(response)")
                #expect(response["x-request-id"] == request["x-request-id"])
                // One access-log line per WebSocket, when it ends: 101 and the bytes both ways
                // (three binary messages of up to 4 MiB each way).
                let line = try #require(await Self.tunnelLog(proxy))
                #expect(Int(line["bytes_in"] ?? "").map { $0 > 4 * 1024 * 1024 } == true, "\(line)")
                #expect(Int(line["bytes_out"] ?? "").map { $0 > 4 * 1024 * 1024 } == true, "\(line)")
                #expect(line["error"] == nil)
                let text = await metrics.exposition(proxy.engine, generation: 1)
                #expect(text.contains(#"loom_websocket_upgrades_total{route="ws"} 1"#), "\(text)")
                #expect(text.contains("loom_websocket_connections 0"))
            }
        }

        @Test func theServerSpeaksFirstAndClosesWithItsOwnCode() async throws {
            try await Self.withServer { proxy in
                // Bytes the server sends right after its 101 arrive (maybe in the same read).
                #expect(try Self.client("ws://127.0.0.1:\(proxy.port)/push", "push")["first"] as? String == "hello")
                let closed = try Self.client("ws://127.0.0.1:\(proxy.port)/close", "close")
                #expect(closed["close_code"] as? Int == 4001 && closed["close_reason"] as? String == "bye", "\(closed)")
            }
        }

        @Test func aRefusedHandshakeIsAnOrdinaryResponse() async throws {
            try await Self.withServer { proxy in
                let refused = try Self.client("ws://127.0.0.1:\(proxy.port)/reject", "reject")
                #expect(refused["status"] as? Int == 403 && refused["body"] as? String == "no websocket here\n", "\(refused)")
                // The connection stays an HTTP connection: nothing was tunnelled.
                #expect(await E2E.eventually { proxy.logs.all.contains { $0["status"]?.description == "403" } })
            }
        }

        @Test func aQuietWebSocketEndsAfterTheTunnelTimeout() async throws {
            let yaml = "server: {timeouts: {idle: 200ms, tunnel: 1s}}\n" + Self.plain
            try await Self.withServer(yaml) { proxy in
                let seen = try Self.client("ws://127.0.0.1:\(proxy.port)/idle", "idle")
                // `tunnel`, not `idle`, bounds the quiet: neither 200 ms nor forever.
                let after = seen["closed_after"] as? Double ?? 0
                #expect(after > 0.9 && after < 5, "\(seen)")
                #expect(seen["close_frame"] as? Bool == false)
                let line = try #require(await Self.tunnelLog(proxy))
                #expect(line["error"] == "WebSocket idle for longer than timeouts.tunnel", "\(line)")
            }
        }

        @Test func secureWebSocketsThroughAnHTTPSListener() async throws {
            let files = try TLSFixtures.files.get()
            let yaml = """
                listeners:
                  - {name: secure, address: "127.0.0.1:0", protocol: https, tls: {cert_file: \(files.path("a.pem")), key_file: \(files.path("a-key.pem"))}}

                """ + Self.plain
            try await Self.withServer(yaml) { proxy in
                let seen = try Self.client("wss://127.0.0.1:\(proxy.port)/echo", "echo", [files.ca, "a.test"])
                #expect(seen["close_code"] as? Int == 1000)
                #expect((seen["request_headers"] as? [String: String])?["x-forwarded-proto"] == "https")
            }
        }

        /// An `h2c` listener tells HTTP/1.1 from HTTP/2 by the first bytes: a WebSocket
        /// handshake is HTTP/1.1 (its `Upgrade` is not `h2c`) and proceeds as on `http`.
        @Test func aWebSocketOnAnH2CListener() async throws {
            let yaml = "listeners: [{name: both, address: \"127.0.0.1:0\", protocol: h2c}]\n" + Self.plain
            try await Self.withServer(yaml) { proxy in
                let seen = try Self.client("ws://127.0.0.1:\(proxy.port)/push", "push")
                #expect(seen["first"] as? String == "hello")
            }
        }

        /// RFC 8441: an HTTP/2 client opens a WebSocket with an extended CONNECT (loom
        /// announces SETTINGS_ENABLE_CONNECT_PROTOCOL); the backend gets the HTTP/1.1
        /// handshake, the client a 200, and the stream carries the frames both ways.
        @Test func aWebSocketOverHTTP2() async throws {
            let metrics = LoomMetrics()
            let yaml = "listeners: [{name: h2, address: \"127.0.0.1:0\", protocol: h2c}]\n" + Self.plain
            try await Self.withServer(yaml, metrics: metrics) { proxy in
                let result = try E2E.run("python3", [try Self.script(), "h2", "ws://127.0.0.1:\(proxy.port)/echo"])
                let seen = (try? JSONSerialization.jsonObject(with: result.stdout)) as? [String: Any] ?? [:]
                #expect(result.status == 0 && seen["ok"] as? Bool == true, "\(String(decoding: result.stdout, as: UTF8.self)) \(result.stderr)")
                #expect(seen["status"] as? Int == 200 && seen["close_code"] as? Int == 1000, "\(seen)")
                let response = seen["response_headers"] as? [String: String] ?? [:]
                #expect(response["sec-websocket-accept"] == nil && response["upgrade"] == nil && response["connection"] == nil, "\(response)")
                let request = seen["request_headers"] as? [String: String] ?? [:]
                #expect(request["upgrade"] == "websocket" && request["connection"] == "upgrade" && request["sec-websocket-key"] != nil, "\(request)")
                #expect(request["via"] == "2 loom" && request["origin"] == "http://test")
                // The stream ended with the backend's close (END_STREAM), not a cut.
                #expect(seen["reset"] as? Int == nil || seen["reset"] as? Int == 0, "\(seen)")
                let line = try #require(await Self.tunnelLog(proxy))
                #expect(line["protocol"] == "HTTP/2" && Int(line["bytes_in"] ?? "").map { $0 > 200_000 } == true, "\(line)")
                let text = await metrics.exposition(proxy.engine, generation: 1)
                #expect(text.contains(#"loom_websocket_upgrades_total{route="ws"} 1"#), "\(text)")
                // A refused handshake is the backend's answer, over HTTP/2.
                let refused = try E2E.run("python3", [try Self.script(), "h2", "ws://127.0.0.1:\(proxy.port)/reject"])
                let answer = (try? JSONSerialization.jsonObject(with: refused.stdout)) as? [String: Any] ?? [:]
                #expect(answer["status"] as? Int == 403, "\(answer)")
            }
        }

        /// RFC 8441 §5: a 2xx tells an HTTP/2 client its WebSocket is open, so a backend that
        /// serves the handshake as a plain GET (200) gets the stream reset, not a fake tunnel.
        @Test func aHandshakeServedAsAPlainGETIsNotAWebSocketOverHTTP2() async throws {
            try await E2E.withBackend(configure: { $0.listeners = [ListenerConfig(name: "h2", port: 0, protocol: .h2c)] }) { _, proxy in
                let result = try E2E.run("python3", [try Self.script(), "h2", "ws://127.0.0.1:\(proxy.port)/plain"])
                let seen = (try? JSONSerialization.jsonObject(with: result.stdout)) as? [String: Any] ?? [:]
                #expect(seen["status"] is NSNull && seen["reset"] as? Int != nil, "\(seen) \(result.stderr)")
            }
        }

        /// The handshake by hand, to a backend that answers 101 and then only collects bytes:
        /// the client's bytes and its FIN go through, and the backend closing ends the tunnel
        /// after what it sent behind its 101 reached the client.
        @Test func bytesAndEndsPassThroughTheTunnel() async throws {
            let accept = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nearly"
            try await E2E.withRawBackend(accept, closeAfter: false) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(Self.handshake)
                let head = try client.readHead()
                #expect(head.status == 101 && head.header("Upgrade") == "websocket" && head.header("Connection") == "upgrade", "\(head.headers)")
                #expect(String(decoding: client.read(count: 5), as: UTF8.self) == "early")
                #expect(await Self.openTunnels(proxy, become: 1))
                try client.send("frames, as far as loom cares")
                #expect(await E2E.eventually { backend.received.withLockedValue { $0.hasSuffix("\r\n\r\nframes, as far as loom cares") } })
                // The client's FIN reaches the backend, which closes: so does loom, towards the client.
                client.shutdownWrite()
                #expect(client.waitForClose())
                #expect(await Self.openTunnels(proxy, become: 0))
            }
        }

        /// The backend half-closes after its 101 (a FIN, still reading): the client gets what
        /// it sent and then a FIN, and can still send; its own FIN reaches the backend, and
        /// only then does the tunnel end.
        @Test func anUpstreamFINLeavesTheOtherDirectionOpen() async throws {
            let accept = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nlast words"
            try await E2E.withRawBackend(accept, closeAfter: false, halfCloseAfter: true) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(Self.handshake)
                #expect(try client.readHead().status == 101)
                #expect(String(decoding: client.read(count: 10), as: UTF8.self) == "last words")
                // The FIN: a read returns nothing, yet the tunnel is still open.
                #expect(client.read(count: 1).isEmpty)
                #expect(await Self.openTunnels(proxy, become: 1))
                try client.send("still talking")
                #expect(await E2E.eventually { backend.received.withLockedValue { $0.hasSuffix("\r\n\r\nstill talking") } })
                // Only the client's FIN ends the backend's input.
                try await Task.sleep(for: .milliseconds(200))
                #expect(backend.received.withLockedValue { !$0.contains("<END>") })
                client.shutdownWrite()
                #expect(await E2E.eventually { backend.received.withLockedValue { $0.hasSuffix("still talking<END>") } })
                #expect(await Self.openTunnels(proxy, become: 0))
                let line = try #require(await Self.tunnelLog(proxy))
                #expect(line["error"] == nil, "\(line)")
            }
        }

        /// A client that does not wait for the 101: its first frame right behind the
        /// handshake, and its FIN right behind that, before any answer. Both reach the backend
        /// once it accepts, in order; its answer still reaches the client.
        @Test func bytesAndAFINSentBeforeTheSwitchFollowIt() async throws {
            let accept = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nearly"
            try await E2E.withRawBackend(accept, closeAfter: false) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(Self.handshake + "eager")
                client.shutdownWrite()
                let head = try client.readHead()
                #expect(head.status == 101)
                #expect(String(decoding: client.read(count: 5), as: UTF8.self) == "early")
                #expect(await E2E.eventually { backend.received.withLockedValue { $0.hasSuffix("\r\n\r\neager") } })
                // The backend saw the FIN and closed: the tunnel is over.
                #expect(client.waitForClose())
                #expect(await Self.openTunnels(proxy, become: 0))
            }
        }

        /// A refused handshake is an ordinary exchange: the connection goes on with the next
        /// request.
        @Test func aRefusedHandshakeLeavesTheConnectionUsable() async throws {
            try await E2E.withRawBackend("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", closeAfter: false) { backend, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send(Self.handshake)
                let refused = try client.readResponse()
                #expect(refused.status == 403 && refused.bodyText == "no")
                try client.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
                let next = try client.readResponse()
                #expect(next.status == 403)
                #expect(backend.received.withLockedValue { $0.contains("GET /next HTTP/1.1\r\n") })
            }
        }

        @Test func onlyAWebSocketUpgradeIsForwarded() async throws {
            try await E2E.withBackend { _, proxy in
                // Another protocol: the request is answered as plain HTTP, without the fields.
                let response = try proxy.get("/other", headers: ["Connection: upgrade", "Upgrade: foo/2"])
                let echoed = try EchoedRequest(json: Data(response.body))
                #expect(response.status == 200 && !echoed.has("upgrade") && !echoed.has("connection"), "\(echoed.headers)")
                // A WebSocket upgrade over HTTP/1.0, or with a body, is not one either.
                let old = try proxy.request("GET /old HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
                #expect(try !EchoedRequest(json: Data(old.body)).has("upgrade"))
                let body = try proxy.request("POST /body HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nhi")
                #expect(try !EchoedRequest(json: Data(body.body)).has("upgrade"))
            }
        }

        @Test func aSwitchNobodyAskedForIsABadGateway() async throws {
            let switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            try await E2E.withRawBackend(switching) { _, proxy in
                let status = try proxy.get("/plain").status
                #expect(status == 502)
            }
            // Asked for a WebSocket, answered with another protocol, or without the answer
            // the key calls for (a backend echoing a client's choice of status and fields
            // must not open a tunnel past loom).
            for answer in ["Upgrade: h2c\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Upgrade: websocket\r\nSec-WebSocket-Accept: forged"] {
                try await E2E.withRawBackend("HTTP/1.1 101 Switching Protocols\r\n\(answer)\r\nConnection: Upgrade\r\n\r\n") { _, proxy in
                    let client = try RawClient(port: proxy.port)
                    try client.send(Self.handshake)
                    #expect(try client.readResponse().status == 502, "\(answer)")
                }
            }
        }

        static let handshake = "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }
}
