import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// HTTP/2 through a running proxy with real clients: curl (prior knowledge and ALPN), h2load
/// with many concurrent streams, nghttp for trailers, and a frame-by-frame abusive client
/// (Fixtures/h2_abuse.py) for the limits and flood defences.
extension ProxyE2E {
    @Suite struct HTTP2E2ETests {
        /// An `h2c` listener in front of one `TestBackend`.
        static func withH2C(
            _ configure: @escaping (inout LoomConfiguration) -> Void = { _ in }, _ body: (TestBackend, ProxyHarness) async throws -> Void
        ) async throws {
            try await E2E.withBackend(configure: { configuration in
                configuration.listeners = [ListenerConfig(name: "h2c", port: 0, protocol: .h2c)]
                configure(&configuration)
            }, body)
        }

        /// curl's output: the body, the status and the HTTP version ("2", "1.1").
        static func curl(_ arguments: [String]) throws -> (body: String, status: Int, version: String) {
            let result = try E2E.curl(arguments + ["--write-out", "\n%{http_code} %{http_version}"])
            #expect(result.status == 0, "\(result.stderr)")
            let text = String(decoding: result.stdout, as: UTF8.self)
            let split = text.lastIndex(of: "\n") ?? text.endIndex
            let trailer = text[split...].dropFirst().split(separator: " ")
            return (String(text[..<split]), trailer.first.flatMap { Int($0) } ?? 0, trailer.last.map(String.init) ?? "")
        }

        @Test func priorKnowledgeAndHTTP11ShareAnH2CListener() async throws {
            try await Self.withH2C { _, proxy in
                let h2 = try Self.curl(["--http2-prior-knowledge", "-H", "Cookie: a=1", "-H", "Cookie: b=2", "http://127.0.0.1:\(proxy.port)/p?q=1"])
                #expect(h2.version == "2")
                let echoed = try EchoedRequest(json: Data(h2.body.utf8))
                // The backend sees an HTTP/1.1 request: Host from :authority, cookies joined.
                #expect(echoed.method == "GET" && echoed.uri == "/p?q=1" && echoed.version == "1.1")
                #expect(echoed.values("host") == ["127.0.0.1:\(proxy.port)"] && echoed.values("cookie") == ["a=1; b=2"])
                #expect(echoed.values("x-forwarded-proto") == ["http"])
                // Via names the protocol the request was received in (RFC 9110 §7.6.3).
                #expect(echoed.values("via") == ["2 loom"])

                let h1 = try Self.curl(["http://127.0.0.1:\(proxy.port)/plain"])
                let plain = try EchoedRequest(json: Data(h1.body.utf8))
                #expect(h1.version == "1.1" && plain.uri == "/plain" && plain.values("via") == ["1.1 loom"])
                // The access log says which protocol each request came in.
                #expect(await E2E.eventually { proxy.logs.all.count == 2 })
                let protocols = proxy.logs.all.map { "\($0["path"]?.description ?? "") \($0["protocol"]?.description ?? "")" }
                #expect(protocols.sorted() == ["/p?q=1 HTTP/2", "/plain HTTP/1.1"], "\(protocols)")
            }
        }

        @Test func anUpgradeToH2CContinuesAsStreamOne() async throws {
            try await Self.withH2C { backend, proxy in
                // curl asks for the upgrade on its first request and gets the answer over HTTP/2.
                let upgraded = try Self.curl(["--http2", "http://127.0.0.1:\(proxy.port)/first"])
                let first = try EchoedRequest(json: Data(upgraded.body.utf8))
                #expect(upgraded.version == "2" && first.uri == "/first")
                // nghttp too, with a second request on the same connection (stream 13 after its
                // priority streams), each reaching the backend once.
                let result = try E2E.run("/usr/bin/nghttp", ["-u", "-v", "http://127.0.0.1:\(proxy.port)/a", "http://127.0.0.1:\(proxy.port)/b"])
                let text = String(decoding: result.stdout, as: UTF8.self)
                #expect(text.contains("HTTP Upgrade success") && text.contains("recv (stream_id=1) :status: 200"), "\(text)")
                #expect(backend.requestURIs.withLockedValue { $0.filter { ["/first", "/a", "/b"].contains($0) } }.sorted() == ["/a", "/b", "/first"])
                // A request with a body is not upgraded: HTTP/1.1 answers it (the RFC lets a server ignore Upgrade).
                let post = try Self.curl(["--http2", "--data-binary", "abc", "http://127.0.0.1:\(proxy.port)/post"])
                let posted = try EchoedRequest(json: Data(post.body.utf8))
                #expect(post.version == "1.1" && posted.bodyBytes == 3)
            }
        }

        @Test func bodiesStreamBothWaysUnderFlowControl() async throws {
            try await Self.withH2C { _, proxy in
                // 3 MB down: many times the 64 KiB stream window, so it only arrives whole if
                // WINDOW_UPDATEs keep flowing as curl reads.
                let down = try E2E.curl(["--http2-prior-knowledge", "http://127.0.0.1:\(proxy.port)/stream?bytes=3000000"])
                #expect(down.status == 0 && down.stdout.count == 3_000_000, "\(down.stderr)")
                #expect(E2E.checksum(down.stdout) == E2E.checksum(E2E.streamPattern(3_000_000)))

                let file = FileManager.default.temporaryDirectory.appendingPathComponent("loom-h2-\(UUID().uuidString.prefix(8)).bin")
                let upload = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
                try upload.write(to: file)
                defer { try? FileManager.default.removeItem(at: file) }
                // With a content-length, then as a stream of unknown length (sent upstream chunked).
                for extra in [["--data-binary", "@\(file.path)"], ["-T", file.path, "-H", "Content-Length:"]] {
                    let up = try Self.curl(["--http2-prior-knowledge", "-X", "POST"] + extra + ["http://127.0.0.1:\(proxy.port)/echo"])
                    #expect(up.version == "2")
                    let echoed = try EchoedRequest(json: Data(up.body.utf8))
                    #expect(echoed.bodyBytes == upload.count && echoed.checksum == E2E.checksum(upload), "\(extra)")
                }
            }
        }

        @Test func staticFilesAndAnIdleTimeout() async throws {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("loom-h2-static-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            let content = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            try content.write(to: root.appendingPathComponent("f.bin"))
            try await Self.withH2C({ configuration in
                configuration.routes = [RouteConfig(name: "files", match: RouteMatch(path: .prefix("/")), action: .files(StaticFiles(root: root.path)))]
                configuration.server.timeouts.idle = .seconds(1)
                configuration.server.shutdownTimeout = .seconds(1)
            }) { _, proxy in
                // Files are not sent with sendfile on a stream: read slices go through the bridge.
                let file = try E2E.curl(["--http2-prior-knowledge", "http://127.0.0.1:\(proxy.port)/f.bin"])
                #expect(file.status == 0 && file.stdout == content, "\(file.stderr)")
                // A connection that opens no stream gets GOAWAY after the idle timeout, and is
                // closed once the grace (shutdown_timeout) is over: this client never answers
                // the PING that would let it close sooner.
                let idle = try Self.abuse("streams", port: proxy.port, count: 0)
                #expect(idle.contains("goaway 0") && idle.contains("closed"), "\(idle)")
            }
        }

        @Test func responseTrailersReachTheClient() async throws {
            try await Self.withH2C { _, proxy in
                let result = try E2E.run("/usr/bin/nghttp", ["-v", "http://127.0.0.1:\(proxy.port)/trailers"])
                let text = String(decoding: result.stdout, as: UTF8.self)
                #expect(result.status == 0, "\(result.stderr)")
                // The second HEADERS frame, after the body, ends the stream with the trailer.
                let trailer = try #require(text.range(of: "x-upstream-trailer: t1"), "\(text)")
                #expect(text[..<trailer.lowerBound].contains("recv DATA frame"))
            }
        }

        @Test func manyConcurrentStreamsOnFewConnections() async throws {
            try await Self.withH2C { backend, proxy in
                let result = try E2E.run("/usr/bin/h2load", ["-n", "2000", "-c", "4", "-m", "64", "http://127.0.0.1:\(proxy.port)/load"])
                let text = String(decoding: result.stdout, as: UTF8.self)
                #expect(text.contains("2000 succeeded, 0 failed, 0 errored"), "\(text)")
                #expect(text.contains("status codes: 2000 2xx"), "\(text)")
                #expect(backend.requestURIs.withLockedValue { $0.filter { $0 == "/load" }.count } == 2000)
            }
        }

        @Test func theStreamLimitIsAnnouncedAndEnforced() async throws {
            try await Self.withH2C({ $0.server.limits.maxConcurrentStreams = 4 }) { _, proxy in
                // /delay keeps each stream open: the fifth is over the limit.
                let abuse = try Self.abuse("streams", port: proxy.port, count: 8)
                #expect(abuse.contains("settings max_concurrent_streams=4"), "\(abuse)")
                #expect(abuse.contains { $0.hasPrefix("goaway 1") || $0.hasPrefix("reset 7") }, "refused: \(abuse)")
                // A client that keeps to the limit gets everything answered.
                let result = try E2E.run("/usr/bin/h2load", ["-n", "200", "-c", "1", "-m", "32", "http://127.0.0.1:\(proxy.port)/"])
                #expect(String(decoding: result.stdout, as: UTF8.self).contains("200 succeeded"))
            }
        }

        @Test func aMalformedRequestResetsItsStreamOnly() async throws {
            try await Self.withH2C { _, proxy in
                let abuse = try Self.abuse("malformed", port: proxy.port, count: 3)
                // Three PROTOCOL_ERROR resets; the three good requests on the same connection answered.
                #expect(abuse.contains("reset 1 x3") && abuse.contains("headers x3") && !abuse.contains { $0.hasPrefix("goaway") }, "\(abuse)")
            }
        }

        @Test(arguments: ["rapid-reset", "continuation"])
        func floodsEndTheConnectionAndNothingElse(_ mode: String) async throws {
            try await Self.withH2C { _, proxy in
                let abuse = try Self.abuse(mode, port: proxy.port, count: 1000)
                #expect(abuse.contains("goaway 11"), "ENHANCE_YOUR_CALM: \(abuse)")
                #expect(try Self.curl(["--http2-prior-knowledge", "http://127.0.0.1:\(proxy.port)/after"]).version == "2")
            }
        }

        @Test func aRequestHeadTooLargeIsRefused() async throws {
            try await Self.withH2C({ $0.server.limits.maxHeaderBytes = 4096 }) { _, proxy in
                // Over the limit: 431, as for HTTP/1.1.
                let big = try Self.curl(["--http2-prior-knowledge", "-H", "X-Big: \(String(repeating: "b", count: 6000))", "http://127.0.0.1:\(proxy.port)/"])
                #expect(big.status == 431 && big.version == "2", "\(big)")
                // Far over it (past SETTINGS_MAX_HEADER_LIST_SIZE): the connection is closed.
                let huge = try E2E.curl(["--http2-prior-knowledge", "-H", "X-Big: \(String(repeating: "b", count: 30000))", "http://127.0.0.1:\(proxy.port)/"])
                #expect(huge.status != 0 && !String(decoding: huge.stdout, as: UTF8.self).contains("x-big"))
                #expect(try Self.curl(["--http2-prior-knowledge", "http://127.0.0.1:\(proxy.port)/small"]).version == "2")
            }
        }

        /// Runs Fixtures/h2_abuse.py; returns the lines it printed.
        static func abuse(_ mode: String, port: Int, count: Int) throws -> [String] {
            let script = try #require(Bundle.module.url(forResource: "h2_abuse", withExtension: "py", subdirectory: "Fixtures"))
            let result = try E2E.run("python3", [script.path, mode, String(port), String(count)])
            #expect(result.status == 0, "\(result.stderr)")
            return String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        }
    }
}
