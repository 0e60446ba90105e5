import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// HTTP/2 to an upstream (`protocol: h2c`): a real HTTP/2 server built on Python's `h2`
/// (Fixtures/h2_backend.py) behind loom, reached by curl over HTTP/1.1 and HTTP/2.
extension ProxyE2E {
    @Suite struct HTTP2UpstreamE2ETests {
        /// One event loop, so every request shares its one connection to the backend.
        static let yaml = """
            server: {worker_threads: 1}
            upstreams: [{name: h2, protocol: h2c, endpoints: ["127.0.0.1:{port}"]}]
            routes: [{id: all, path: /*, upstream: h2}]
            """

        static func withBackend(listener: String = "http", _ body: (ProxyHarness) async throws -> Void) async throws {
            let yaml = "listeners: [{name: l, address: \"127.0.0.1:0\", protocol: \(listener)}]\n" + Self.yaml
            try await E2E.withFixtureServer("h2_backend", [], yaml: yaml, body)
        }

        static func echoed(_ arguments: [String]) throws -> [String: Any] {
            let result = try E2E.curl(arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return (try? JSONSerialization.jsonObject(with: result.stdout)) as? [String: Any] ?? [:]
        }

        @Test func anHTTP11RequestGoesUpstreamAsAStreamOfOneSharedConnection() async throws {
            try await Self.withBackend { proxy in
                let first = try Self.echoed([
                    "-H", "TE: trailers, deflate", "-H", "Connection: TE, X-Hop", "-H", "X-Hop: 1", "-H", "X-Kept: yes",
                    "--data-binary", "hello", "http://127.0.0.1:\(proxy.port)/a?q=1",
                ])
                #expect(first["method"] as? String == "POST" && first["path"] as? String == "/a?q=1")
                #expect(first["authority"] as? String == "127.0.0.1:\(proxy.port)" && first["scheme"] as? String == "http")
                #expect(first["body"] as? String == "hello" && first["length"] as? Int == 5)
                let fields = first["headers"] as? [String: String] ?? [:]
                // No connection-specific field reaches HTTP/2 (RFC 9113 §8.2.2), except TE: trailers.
                #expect(fields["te"] == "trailers" && fields["x-hop"] == nil && fields["connection"] == nil && fields["host"] == nil, "\(fields)")
                #expect(fields["x-kept"] == "yes" && fields["content-length"] == "5" && fields["via"] == "1.1 loom")
                // A second request, and a chunked upload, are streams of the same connection.
                let second = try Self.echoed(["-H", "Transfer-Encoding: chunked", "--data-binary", "abc", "http://127.0.0.1:\(proxy.port)/b"])
                #expect(second["body"] as? String == "abc" && second["length"] as? Int == 3)
                #expect(second["connection"] as? Int == first["connection"] as? Int)
                // The answer says which protocol loom received it in.
                let head = try E2E.curl(["-sI", "http://127.0.0.1:\(proxy.port)/c"])
                #expect(String(decoding: head.stdout, as: UTF8.self).lowercased().contains("via: 2 loom"))
            }
        }

        @Test func bodiesStreamWithFlowControlAndTrailersReachEitherClient() async throws {
            try await Self.withBackend(listener: "h2c") { proxy in
                // 3 MB: far more than HTTP/2's initial 64 KiB windows, so it moves only as loom
                // grants window to the backend.
                let big = try E2E.curl(["http://127.0.0.1:\(proxy.port)/big?n=3000000"])
                #expect(big.stdout.count == 3_000_000 && big.stdout.enumerated().allSatisfy { $0.element == UInt8($0.offset % 256) })
                let h2 = try E2E.curl(["--http2-prior-knowledge", "http://127.0.0.1:\(proxy.port)/big?n=3000000"])
                #expect(h2.stdout.count == 3_000_000)
                // Trailers from the upstream: in the chunked trailer section for HTTP/1.1 …
                let chunked = try E2E.curl(["--raw", "http://127.0.0.1:\(proxy.port)/trailers"])
                #expect(String(decoding: chunked.stdout, as: UTF8.self) == "3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n")
                // … and as trailing HEADERS for HTTP/2 (nghttp shows them).
                let nghttp = try E2E.run("/usr/bin/nghttp", ["-v", "http://127.0.0.1:\(proxy.port)/trailers"])
                let text = String(decoding: nghttp.stdout, as: UTF8.self)
                #expect(text.contains("x-checksum: 42") && text.contains("abc"), "\(text)")
                // 204 and HEAD: no body either way.
                let empty = try E2E.curl(["-i", "http://127.0.0.1:\(proxy.port)/nocontent"])
                #expect(String(decoding: empty.stdout, as: UTF8.self).hasPrefix("HTTP/1.1 204"))
                let head = try E2E.curl(["-I", "--http2-prior-knowledge", "http://127.0.0.1:\(proxy.port)/x"])
                #expect(String(decoding: head.stdout, as: UTF8.self).hasPrefix("HTTP/2 200"))
            }
        }

        @Test func manyConcurrentStreamsShareTheUpstreamConnection() async throws {
            try await Self.withBackend(listener: "h2c") { proxy in
                let result = try E2E.run("/usr/bin/h2load", ["-n", "400", "-c", "4", "-m", "20", "http://127.0.0.1:\(proxy.port)/load"])
                let text = String(decoding: result.stdout, as: UTF8.self)
                #expect(text.contains("400 succeeded, 0 failed, 0 errored"), "\(text)")
                // All of them were streams of the one connection.
                let after = try Self.echoed(["http://127.0.0.1:\(proxy.port)/after"])
                #expect(after["connection"] as? Int == 1, "\(after)")
            }
        }

        /// RFC 9113 §8.7: a stream refused unprocessed (REFUSED_STREAM) is sent again, even
        /// a POST, with its body.
        @Test func aRefusedStreamIsSentAgain() async throws {
            try await Self.withBackend { proxy in
                let echoed = try Self.echoed(["--data-binary", "once", "http://127.0.0.1:\(proxy.port)/refused"])
                #expect(echoed["method"] as? String == "POST" && echoed["body"] as? String == "once", "\(echoed)")
                #expect(await E2E.eventually { proxy.logs.all.count == 1 })
                #expect(proxy.logs.all.first?["status"]?.description == "200" && proxy.logs.all.first?["error"] == nil)
            }
        }

        /// The upstream's GOAWAY: the next request goes on a new connection.
        @Test func afterTheUpstreamsGOAWAYANewConnectionServes() async throws {
            try await Self.withBackend { proxy in
                let last = try Self.echoed(["http://127.0.0.1:\(proxy.port)/goaway"])
                #expect(last["path"] as? String == "/goaway" && last["connection"] as? Int == 1)
                let next = try Self.echoed(["http://127.0.0.1:\(proxy.port)/next"])
                #expect(next["path"] as? String == "/next" && next["connection"] as? Int == 2, "\(next)")
            }
        }

        /// A connection idle for `pool.idle_timeout` is closed by loom, with a GOAWAY first.
        @Test func anIdleConnectionIsClosedWithAGOAWAY() async throws {
            let yaml = """
                listeners: [{name: l, address: "127.0.0.1:0", protocol: http}]
                server: {worker_threads: 1}
                upstreams: [{name: h2, protocol: h2c, endpoints: ["127.0.0.1:{port}"], pool: {idle_timeout: 500ms}}]
                routes: [{id: all, path: /*, upstream: h2}]
                """
            try await E2E.withFixtureServer("h2_backend", [], yaml: yaml) { proxy in
                let first = try Self.echoed(["http://127.0.0.1:\(proxy.port)/a"])
                #expect(first["connection"] as? Int == 1 && first["goaways_received"] as? Int == 0)
                // The sweep runs every second: two of them see the connection idle long enough.
                try await Task.sleep(for: .milliseconds(2500))
                let second = try Self.echoed(["http://127.0.0.1:\(proxy.port)/b"])
                #expect(second["connection"] as? Int == 2 && second["goaways_received"] as? Int == 1, "\(second)")
            }
        }

        @Test func aResetStreamIsABadGatewayAndTheConnectionGoesOn() async throws {
            try await Self.withBackend { proxy in
                let reset = try E2E.curl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(proxy.port)/reset"])
                #expect(String(decoding: reset.stdout, as: UTF8.self) == "502")
                let line = try #require(await E2E.eventually { proxy.logs.all.contains { $0["path"]?.description == "/reset" } } ? proxy.logs.all.first { $0["path"]?.description == "/reset" } : nil)
                #expect(line["error"]?.description == "upstream closed the connection", "\(line)")
                let next = try Self.echoed(["http://127.0.0.1:\(proxy.port)/next"])
                #expect(next["path"] as? String == "/next" && next["connection"] as? Int == 1)
            }
        }
    }
}
