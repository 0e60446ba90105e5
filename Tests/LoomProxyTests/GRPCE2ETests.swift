import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// gRPC through a running proxy with real peers: Python `grpcio` server and client
/// (Fixtures/grpc_peer.py), cleartext and TLS, and curl for what a gRPC client would not
/// send on cue (a deadline it does not enforce itself).
extension ProxyE2E {
    @Suite struct GRPCE2ETests {
        /// A `grpc` listener, one event loop, and the grpc_peer.py server as upstream `g`.
        static let cleartext = """
            listeners: [{name: g, address: "127.0.0.1:0", protocol: grpc}]
            server: {worker_threads: 1}
            upstreams: [{name: g, protocol: grpc, endpoints: ["127.0.0.1:{port}"]}]
            routes: [{id: calls, path: /loom.Test/*, upstream: g}]
            """

        /// Runs a grpc_peer.py client scenario against loom; returns the JSON object it printed.
        static func call(_ proxy: ProxyHarness, _ scenario: String, _ extra: [String] = []) throws -> [String: Any] {
            let result = try E2E.run("python3", [try E2E.fixture("grpc_peer"), "client", "127.0.0.1:\(proxy.port)", scenario] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            let json = (try? JSONSerialization.jsonObject(with: result.stdout)) as? [String: Any] ?? [:]
            #expect(json["unexpected"] == nil && json["error"] == nil, "\(String(decoding: result.stdout, as: UTF8.self))")
            return json
        }

        @Test func unaryAndEveryStreamingKindPassWithMetadataAndTrailers() async throws {
            try await E2E.withFixtureServer("grpc_peer", yaml: Self.cleartext) { proxy in
                let echo = try Self.call(proxy, "echo")
                #expect(echo["code"] as? String == "OK" && echo["message"] as? String == "hello")
                #expect((echo["initial"] as? [String: String])?["x-echo"] == "1", "\(echo)")
                #expect((echo["trailing"] as? [String: String])?["x-trailer"] == "done", "\(echo)")
                // The call reached the server with its metadata and loom's forwarding fields.
                let seen = try Self.call(proxy, "metadata") as? [String: String] ?? [:]
                #expect(seen["x-client"] == "yes" && seen["via"] == "2 loom" && seen["x-forwarded-for"] == "127.0.0.1", "\(seen)")
                #expect(try Self.call(proxy, "count")["messages"] as? [String] == ["0", "1", "2", "3", "4"])
                #expect(try Self.call(proxy, "sum")["message"] as? String == "42")
                // Bidi: each answer arrives before the client sends its next message.
                #expect(try Self.call(proxy, "chat")["messages"] as? [String] == ["ONE", "TWO", "THREE"])
                // 1 MiB each way, well past the flow-control windows on both sides.
                let big = try Self.call(proxy, "big")
                #expect(big["same"] as? Bool == true && big["size"] as? Int == 1_048_576)
                // Every call was a stream of the one upstream connection; all were logged as 200.
                #expect(await E2E.eventually { proxy.logs.all.count == 6 })
                #expect(proxy.logs.all.allSatisfy { $0["status"]?.description == "200" && $0["protocol"]?.description == "HTTP/2" })
            }
        }

        @Test func anUpstreamStatusAndItsTrailersReachTheClient() async throws {
            try await E2E.withFixtureServer("grpc_peer", yaml: Self.cleartext) { proxy in
                let failed = try Self.call(proxy, "fail")
                #expect(failed["code"] as? String == "FAILED_PRECONDITION" && failed["details"] as? String == "nope: ü%", "\(failed)")
                let trailing = failed["trailing"] as? [String: String] ?? [:]
                #expect(trailing["x-why"] == "because" && trailing["content-length"] == nil, "\(trailing)")
            }
        }

        @Test func theClientsDeadlineEndsTheCallThroughLoom() async throws {
            try await E2E.withFixtureServer("grpc_peer", yaml: Self.cleartext) { proxy in
                let slow = try Self.call(proxy, "slow:3000:300")
                #expect(slow["code"] as? String == "DEADLINE_EXCEEDED", "\(slow)")
                #expect((slow["elapsed_ms"] as? Int).map { $0 < 2000 } == true, "\(slow)")
                // A call inside its deadline is answered.
                #expect(try Self.call(proxy, "slow:50:5000")["code"] as? String == "OK")
            }
        }

        @Test func loomFailuresBecomeGRPCStatuses() async throws {
            let closed = try E2E.closedPort()
            let yaml = """
                listeners: [{name: g, address: "127.0.0.1:0", protocol: grpc}]
                upstreams:
                  - {name: g, protocol: grpc, endpoints: ["127.0.0.1:{port}"]}
                  - {name: gone, protocol: h2c, endpoints: ["127.0.0.1:\(closed)"]}
                routes: [{id: gone, path: /loom.Test/Echo, upstream: gone}]
                """
            try await E2E.withFixtureServer("grpc_peer", yaml: yaml) { proxy in
                // Nothing listens: UNAVAILABLE (HTTP 502), with loom's message.
                let refused = try Self.call(proxy, "unavailable")
                #expect(refused["code"] as? String == "UNAVAILABLE", "\(refused)")
                #expect((refused["details"] as? String)?.contains("connect") == true, "\(refused)")
                // No route: UNIMPLEMENTED (HTTP 404), as a gRPC server answers an unknown method.
                let unrouted = try Self.call(proxy, "fail")
                #expect(unrouted["code"] as? String == "UNIMPLEMENTED", "\(unrouted)")
                let requestID = (unrouted["trailing"] as? [String: String])?["x-request-id"]
                #expect(requestID != nil && proxy.logs.all.contains { $0["request_id"]?.description == requestID })
            }
        }

        /// Filters run on calls as on any request: a refusal is a gRPC status, and response
        /// fields they add are initial metadata.
        @Test func filtersRunOnCalls() async throws {
            let yaml = """
                listeners: [{name: g, address: "127.0.0.1:0", protocol: grpc}]
                upstreams: [{name: g, protocol: grpc, endpoints: ["127.0.0.1:{port}"]}]
                routes:
                  - id: calls
                    path: /loom.Test/*
                    upstream: g
                    filters: [{type: api_key, keys: [s3cret]}, {type: headers, add_response_headers: {X-Gateway: loom}}]
                """
            try await E2E.withFixtureServer("grpc_peer", yaml: yaml) { proxy in
                let refused = try Self.call(proxy, "refused")
                #expect(refused["code"] as? String == "UNAUTHENTICATED", "\(refused)")
                let allowed = try Self.call(proxy, "echo-key")
                #expect(allowed["code"] as? String == "OK" && (allowed["initial"] as? [String: String])?["x-gateway"] == "loom", "\(allowed)")
            }
        }

        @Test func loomEnforcesGRPCTimeoutItself() async throws {
            // An HTTP/1.1 backend that knows nothing of gRPC deadlines, and a client (curl) that
            // sends one without enforcing it: only loom can end the call at 200 ms.
            try await E2E.withBackend(configure: { $0.listeners = [ListenerConfig(name: "g", port: 0, protocol: .grpc)] }) { _, proxy in
                let started = ContinuousClock.now
                let result = try E2E.curl([
                    "--http2-prior-knowledge", "-D", "-", "-o", "/dev/null", "-H", "content-type: application/grpc", "-H", "te: trailers",
                    "-H", "grpc-timeout: 200m", "--data-binary", "abcde", "http://127.0.0.1:\(proxy.port)/delay?ms=3000",
                ])
                let elapsed = ContinuousClock.now - started
                let head = String(decoding: result.stdout, as: UTF8.self)
                #expect(head.hasPrefix("HTTP/2 200") && head.contains("grpc-status: 4") && head.contains("grpc-message: the call outlived its grpc-timeout"), "\(head)")
                #expect(elapsed < .milliseconds(2000))
                #expect(await E2E.eventually { proxy.logs.all.contains { $0["error"]?.description.contains("grpc-timeout") == true } })
                // The same request without the gRPC content type is not a call: no deadline.
                let plain = try E2E.curl(["--http2-prior-knowledge", "-H", "grpc-timeout: 1m", "http://127.0.0.1:\(proxy.port)/delay?ms=300"])
                #expect(String(decoding: plain.stdout, as: UTF8.self) == "delayed 300")
            }
        }

        @Test func grpcsListenerAndTLSUpstream() async throws {
            let files = try TLSFixtures.files.get()
            let yaml = """
                listeners: [{name: g, address: "127.0.0.1:0", protocol: grpcs, tls: {cert_file: \(files.path("a.pem")), key_file: \(files.path("a-key.pem"))}}]
                upstreams: [{name: g, protocol: grpc, endpoints: ["127.0.0.1:{port}"], tls: {ca_file: \(files.ca), server_name: a.test}}]
                routes: [{id: calls, path: /loom.Test/*, upstream: g}]
                """
            try await E2E.withFixtureServer("grpc_peer", ["server", files.path("a.pem"), files.path("a-key.pem")], yaml: yaml) { proxy in
                let echo = try Self.call(proxy, "echo", [files.ca, "a.test"])
                #expect(echo["code"] as? String == "OK" && echo["message"] as? String == "hello", "\(echo)")
                #expect(try Self.call(proxy, "chat", [files.ca, "a.test"])["messages"] as? [String] == ["ONE", "TWO", "THREE"])
                let seen = try Self.call(proxy, "metadata", [files.ca, "a.test"]) as? [String: String] ?? [:]
                #expect(seen["x-forwarded-proto"] == "https", "\(seen)")
            }
        }
    }
}
