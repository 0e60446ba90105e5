import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// Files through a running proxy: a `static` route (index, directory redirect, ranges,
/// conditionals, traversal attempts) and X-Sendfile / X-Accel-Redirect answers from an
/// upstream, a large file fetched whole and by range with curl.
extension ProxyE2E {
    @Suite struct StaticFilesE2ETests {
        /// A directory tree: `root/` (served) with an index, a 3 MiB file and a link out;
        /// `outside.txt` next to it.
        static func withTree(_ body: (_ base: String, _ root: String) async throws -> Void) async throws {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("loom-static-\(UUID().uuidString)").path
            let root = base + "/root"
            try FileManager.default.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: base) }
            try "<h1>home</h1>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
            try "docs".write(toFile: root + "/docs/index.html", atomically: true, encoding: .utf8)
            try "outside".write(toFile: base + "/outside.txt", atomically: true, encoding: .utf8)
            try Data(E2E.streamPattern(3 * 1024 * 1024)).write(to: URL(fileURLWithPath: root + "/big.bin"))
            try FileManager.default.createSymbolicLink(atPath: root + "/escape.txt", withDestinationPath: base + "/outside.txt")
            try await body(base, root)
        }

        @Test func staticRouteServesFilesWithRangesAndConditionals() async throws {
            try await Self.withTree { _, root in
                try await E2E.withBackends(1, dialect: .loomYAML, """
                    upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                    routes:
                      - {id: assets, path: "/assets/*", strip_prefix: true, static: {root: "\(root)"}, set_response_headers: {Cache-Control: max-age=60}}
                      - {id: all, upstream: app}
                    """) { _, proxy in
                    let home = try proxy.get("/assets/")
                    #expect(home.status == 200 && home.bodyText == "<h1>home</h1>")
                    #expect(home.header("content-type") == "text/html; charset=utf-8" && home.header("cache-control") == "max-age=60")
                    let etag = try #require(home.header("etag"))
                    let lastModified = try #require(home.header("last-modified"))
                    #expect(try proxy.get("/assets/index.html", headers: ["If-None-Match: \(etag)"]).status == 304)
                    #expect(try proxy.get("/assets/index.html", headers: ["If-Modified-Since: \(lastModified)"]).status == 304)
                    let redirect = try proxy.get("/assets/docs?x=1")
                    #expect(redirect.status == 301 && redirect.header("location") == "/assets/docs/?x=1")

                    let url = "http://127.0.0.1:\(proxy.port)/assets/big.bin"
                    let whole = try E2E.curl([url])
                    #expect(whole.status == 0 && Array(whole.stdout) == E2E.streamPattern(3 * 1024 * 1024))
                    let part = try E2E.curl(["--range", "1000000-1999999", url])
                    #expect(Array(part.stdout) == Array(E2E.streamPattern(2_000_000)[1_000_000...]))
                    let range = try proxy.get("/assets/big.bin", headers: ["Range: bytes=-10"])
                    #expect(range.status == 206 && range.header("content-range") == "bytes 3145718-3145727/3145728")
                    #expect(range.body == Array(E2E.streamPattern(3 * 1024 * 1024).suffix(10)))
                    let unsatisfiable = try proxy.get("/assets/big.bin", headers: ["Range: bytes=4000000-"])
                    #expect(unsatisfiable.status == 416 && unsatisfiable.header("content-range") == "bytes */3145728")

                    let client = try RawClient(port: proxy.port)
                    try client.send("HEAD /assets/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
                    let head = try client.readResponse(headRequest: true)
                    #expect(head.status == 200 && head.header("content-length") == "3145728" && head.body.isEmpty)
                    try client.send("GET /assets/index.html HTTP/1.1\r\nHost: a\r\n\r\n")
                    #expect(try client.readResponse().bodyText == "<h1>home</h1>", "the connection stays usable after a file")

                    // Traversal attempts: dot segments are refused before routing; encoded
                    // slashes and links out of the root never reach a file outside it.
                    #expect(try proxy.get("/assets/../outside.txt").status == 400)
                    #expect(try proxy.get("/assets/%2e%2e/outside.txt").status == 400)
                    #expect(try proxy.get("/assets/..%2foutside.txt").status == 404)
                    #expect(try proxy.get("/assets/escape.txt").status == 403)
                    #expect(try proxy.get("/assets/nothing").status == 404)
                    let post = try proxy.request("POST /assets/index.html HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
                    #expect(post.status == 405 && post.header("allow") == "GET, HEAD")
                }
            }
        }

        /// A client that reads a large file slowly but steadily keeps the connection for as
        /// long as it takes, past the idle timeout: each slice that goes out counts as activity.
        @Test func aSlowSteadyReaderGetsTheWholeFile() async throws {
            try await Self.withTree { _, root in
                try await E2E.withBackends(1, dialect: .loomYAML, """
                    server: {timeouts: {idle: 1s}}
                    upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                    routes: [{id: files, path: "/*", static: {root: "\(root)"}}]
                    """) { _, proxy in
                    let client = try RawClient(port: proxy.port)
                    try client.send("GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
                    let head = try client.readHead()
                    #expect(head.status == 200)
                    var received: [UInt8] = []
                    let started = ContinuousClock.now
                    while received.count < 3 * 1024 * 1024 {
                        let count = client.readBody(count: min(32 * 1024, 3 * 1024 * 1024 - received.count)) { received += $0 }
                        if count == 0 { break }
                        try await Task.sleep(for: .milliseconds(15))
                    }
                    #expect(ContinuousClock.now - started > .seconds(1), "longer than the idle timeout")
                    #expect(received == E2E.streamPattern(3 * 1024 * 1024))
                }
            }
        }

        /// An upstream answering with X-Sendfile or X-Accel-Redirect has loom send the file,
        /// with the upstream's own fields; paths outside the allowed directories are refused.
        @Test func xSendfileServesConfinedFiles() async throws {
            try await Self.withTree { base, root in
                for (field, value, expected) in [
                    ("X-Sendfile", root + "/big.bin", 200), ("X-Accel-Redirect", "/protected/big.bin", 200),
                    ("X-Sendfile", base + "/outside.txt", 403), ("X-Sendfile", root + "/../outside.txt", 403),
                    ("X-Sendfile", root + "/escape.txt", 403), ("X-Sendfile", root + "/missing", 404),
                ] {
                    let upstream = "HTTP/1.1 200 OK\r\nContent-Type: application/x-custom\r\nContent-Disposition: attachment\r\n\(field): \(value)\r\nContent-Length: 7\r\n\r\nignored"
                    try await FilterE2ETests.withRawUpstream(upstream, """
                        x_sendfile: {enabled: true, roots: ["\(root)"], accel_mappings: {"/protected/": "\(root)"}}
                        upstreams: [{name: app, endpoints: ["127.0.0.1:{raw}"]}]
                        routes: [{id: all, upstream: app}]
                        """) { proxy in
                        let response = try proxy.get("/download")
                        #expect(response.status == expected, "\(field): \(value)")
                        guard expected == 200 else { return }
                        #expect(response.body == E2E.streamPattern(3 * 1024 * 1024))
                        #expect(response.header("content-type") == "application/x-custom" && response.header("content-disposition") == "attachment")
                        #expect(response.header("x-sendfile") == nil && response.header("x-accel-redirect") == nil)
                        let url = "http://127.0.0.1:\(proxy.port)/download"
                        let part = try E2E.curl(["--range", "3000000-", url])
                        #expect(Array(part.stdout) == Array(E2E.streamPattern(3 * 1024 * 1024)[3_000_000...]))
                    }
                }
            }
        }
    }
}
