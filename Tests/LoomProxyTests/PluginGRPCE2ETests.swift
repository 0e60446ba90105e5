import Foundation
import LoomConfig
import NIOPosix
import Testing

@testable import LoomProxy

/// A plugin's gRPC calls (`proxy_grpc_*`) and its HTTP calls to an HTTP/2 upstream, through
/// a running proxy, against the grpcio server of Fixtures/grpc_peer.py. The test plugin
/// (Fixtures/plugins/grpc.c) answers each request itself with what its calls reported.
extension ProxyE2E {
    @Suite struct PluginGRPCE2ETests {
        /// The plugin, with grpc_peer.py's server as upstream `g` (over TLS when `tls` is
        /// given: upstream settings, and the server's certificate and key), and `dead`
        /// defined by `dead` (by default an h2c upstream nobody listens on).
        static func withPlugin(
            tls: (upstream: String, cert: String, key: String)? = nil, dead: String? = nil, _ body: (ProxyHarness) async throws -> Void
        ) async throws {
            let closed = try E2E.closedPort()
            let yaml = """
                server: {worker_threads: 1}
                # The 1 MiB reply takes the (interpreted, debug-built) plugin a while to copy.
                plugins: [{name: grpc, path: "{plugin:grpc}", timeout: 5s}]
                upstreams:
                  - {name: g, protocol: grpc, endpoints: ["127.0.0.1:{port}"]\(tls.map { ", tls: \($0.upstream)" } ?? "")}
                  - \(dead ?? "{name: dead, protocol: h2c, endpoints: [\"127.0.0.1:\(closed)\"]}")
                  - {name: app, endpoints: ["127.0.0.1:\(closed)"]}
                routes: [{id: all, path: /*, upstream: g, plugins: [grpc]}]
                """
            let arguments = ["server"] + (tls.map { [$0.cert, $0.key] } ?? [])
            try await E2E.withFixtureServer("grpc_peer", arguments, yaml: yaml, body)
        }

        static func answer(_ proxy: ProxyHarness, _ path: String) throws -> String {
            let response = try proxy.get(path)
            #expect(response.status == 200, "\(path): \(response.status)")
            return String(decoding: response.body, as: UTF8.self)
        }

        static func expect(
            _ proxy: ProxyHarness, _ path: String, _ expected: String, _ comment: Comment? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation
        ) throws {
            let answer = try Self.answer(proxy, path)
            #expect(answer == expected, comment, sourceLocation: sourceLocation)
        }

        @Test func unaryCallsReportTheirReplyOrTheirStatus() async throws {
            try await Self.withPlugin { proxy in
                try Self.expect(proxy, "/echo", "reply hello")
                // The plugin's initial metadata reached the server.
                let seen = try Self.answer(proxy, "/metadata")
                #expect(seen.contains("\"x-plugin\": \"grpc.c\""), "\(seen)")
                // A failure is on_grpc_close alone, its message percent-decoded.
                try Self.expect(proxy, "/fail", "close 9 9 nope: ü%")
                let slow = try Self.answer(proxy, "/slow")
                #expect(slow.hasPrefix("close 4 4 "), "DEADLINE_EXCEEDED past the call's 200 ms: \(slow)")
                let dead = try Self.answer(proxy, "/dead")
                #expect(dead.hasPrefix("close 14 14 could not connect"), "UNAVAILABLE: \(dead)")
                try Self.expect(proxy, "/http1", "start 2", "BAD_ARGUMENT: gRPC needs an HTTP/2 upstream")
                try Self.expect(proxy, "/unknown", "start 4", "PARSE_FAILURE for an unknown upstream, as Envoy")
                // The call's timeout goes to the server as grpc-timeout.
                try Self.expect(proxy, "/deadline", "reply 3")
                // A reply of 1 MiB is delivered; one byte more is RESOURCE_EXHAUSTED.
                let big = try Self.answer(proxy, "/big")
                #expect(big.hasPrefix("reply xxxx"), "\(big.prefix(100))")
                try Self.expect(proxy, "/too-big", "close 8 8 a message of 1048577 bytes is over the limit of 1048576")
            }
        }

        @Test func streamsReportEveryEventThenClose() async throws {
            try await Self.withPlugin { proxy in
                try Self.expect(proxy, "/chat", "initial application/grpc;message ONE;message TWO;trailing 0;close 0 0 ")
                // proxy_grpc_close half-closes: the answer still comes; a later send is refused.
                try Self.expect(proxy, "/half-close", "close 0 send 2;initial application/grpc;message SOLO;trailing 0;close 0 0 ")
                // A trailers-only answer (the server failed at once) still reports empty
                // initial metadata first, then its status, as Envoy does.
                try Self.expect(proxy, "/fail-stream", "close 0 send 2;initial ;trailing 9;close 9 9 nope: ü%")
                // Cancelled: the token is gone at once, and the server saw the call end.
                try Self.expect(proxy, "/cancel", "cancel 0 send 1 close 1")
                #expect(await E2E.eventually { (try? Self.answer(proxy, "/ended")) == "reply 1" })
                // A stream still open when its request ends is cancelled with it.
                try Self.expect(proxy, "/abandon", "abandoned")
                #expect(await E2E.eventually { (try? Self.answer(proxy, "/ended")) == "reply 2" })
                try Self.expect(proxy, "/misuse", "send 2 close 0 again 1 empty-method 2 pseudo 2")
                try Self.expect(proxy, "/echo", "reply hello", "the instance still serves")
            }
        }

        /// `proxy_http_call` to an HTTP/2 upstream: a stream of its own connection, trailers
        /// included (the gRPC server's status arrives in them).
        /// Answers a real gRPC server does not give (Fixtures/h2_backend.py) end the call with
        /// INTERNAL and why.
        @Test func malformedAnswersAreInternalErrors() async throws {
            let yaml = """
                server: {worker_threads: 1}
                plugins: [{name: grpc, path: "{plugin:grpc}"}]
                upstreams: [{name: g, protocol: h2c, endpoints: ["127.0.0.1:{port}"]}]
                routes: [{id: all, path: /*, upstream: g, plugins: [grpc]}]
                """
            try await E2E.withFixtureServer("h2_backend", [], yaml: yaml) { proxy in
                try Self.expect(proxy, "/compressed", "close 13 13 the upstream sent a compressed message, which loom did not ask for")
                try Self.expect(proxy, "/truncated", "close 13 13 the response ended inside a message")
                try Self.expect(proxy, "/no-status", "close 13 13 the upstream sent no grpc-status", "the reply is not delivered without a status")
            }
        }

        @Test func anHTTPCallToAnHTTP2Upstream() async throws {
            try await Self.withPlugin { proxy in
                try Self.expect(proxy, "/http2-call", "status 200 type application/grpc bytes 7 body hi grpc-status 0")
            }
        }

        /// Over TLS: ALPN agrees on h2 and the upstream's certificate is verified.
        @Test func callsToATLSUpstream() async throws {
            let files = try TLSFixtures.files.get()
            let tls = (upstream: "{ca_file: \(files.ca), server_name: a.test}", cert: files.path("a.pem"), key: files.path("a-key.pem"))
            try await Self.withPlugin(tls: tls) { proxy in
                try Self.expect(proxy, "/echo", "reply hello")
                try Self.expect(proxy, "/chat", "initial application/grpc;message ONE;message TWO;trailing 0;close 0 0 ")
                try Self.expect(proxy, "/http2-call", "status 200 type application/grpc bytes 7 body hi grpc-status 0")
            }
        }

        /// A stream has no deadline, so the upstream's connect timeout must cover the TLS
        /// handshake: a peer that accepts and never answers it fails the stream in time.
        @Test func aStreamWhoseHandshakeNeverEndsFails() async throws {
            let files = try TLSFixtures.files.get()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            // RawBackend answers only a whole HTTP head: a ClientHello gets nothing.
            let silent = RawBackend(group: group, response: "HTTP/1.1 200 OK\r\n\r\n", closeAfter: false)
            try await silent.start()
            let dead = """
                {name: dead, protocol: h2, endpoints: ["127.0.0.1:\(silent.port)"], tls: {ca_file: \(files.ca), server_name: a.test}, timeouts: {connect: 300ms}}
                """
            do {
                try await Self.withPlugin(dead: dead) { proxy in
                    let started = ContinuousClock.now
                    let answer = try Self.answer(proxy, "/dead-stream")
                    #expect(answer.hasPrefix("close 14 14 could not connect"), "\(answer)")
                    #expect(ContinuousClock.now - started < .seconds(3))
                }
            } catch {
                await silent.stop()
                try? await group.shutdownGracefully()
                throw error
            }
            await silent.stop()
            try? await group.shutdownGracefully()
        }
    }
}
