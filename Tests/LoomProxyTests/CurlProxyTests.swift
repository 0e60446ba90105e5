import Foundation
import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// A real-world client through the proxy: curl's own HTTP/1.1 implementation.
    @Suite(.serialized) struct CurlProxyTests {
        @Test func plainGet() async throws {
            try await E2E.withBackend { _, proxy in
                let result = try E2E.curl(["--include", "http://127.0.0.1:\(proxy.port)/stream?bytes=100000&chunked=1"])
                #expect(result.status == 0, "\(result.stderr)")
                let text = result.stdout
                let separator = Data("\r\n\r\n".utf8)
                let split = try #require(text.range(of: separator))
                let head = String(decoding: text[..<split.lowerBound], as: UTF8.self)
                #expect(head.hasPrefix("HTTP/1.1 200"))
                #expect(head.lowercased().contains("via: 1.1 loom"))
                #expect(Array(text[split.upperBound...]) == E2E.streamPattern(100_000))
            }
        }

        @Test func chunkedPostOfAFile() async throws {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("loom-curl-\(UUID().uuidString.prefix(8)).bin")
            let body = E2E.streamPattern(3 * 1024 * 1024 + 17)
            try Data(body).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            try await E2E.withBackend { _, proxy in
                let result = try E2E.curl([
                    "--data-binary", "@\(file.path)", "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/octet-stream",
                    "http://127.0.0.1:\(proxy.port)/echo",
                ])
                #expect(result.status == 0, "\(result.stderr)")
                let echoed = try JSONDecoder().decode(EchoedRequest.self, from: result.stdout)
                #expect(echoed.method == "POST")
                #expect(echoed.bodyBytes == body.count)
                #expect(echoed.checksum == E2E.checksum(body))
                #expect(echoed.values("transfer-encoding") == ["chunked"])
            }
        }

        @Test func uploadWithContentLength() async throws {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("loom-curl-\(UUID().uuidString.prefix(8)).bin")
            let body = E2E.streamPattern(2 * 1024 * 1024)
            try Data(body).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            try await E2E.withBackend { _, proxy in
                let result = try E2E.curl(["-T", file.path, "http://127.0.0.1:\(proxy.port)/echo"])
                #expect(result.status == 0, "\(result.stderr)")
                let echoed = try JSONDecoder().decode(EchoedRequest.self, from: result.stdout)
                #expect(echoed.method == "PUT")
                #expect(echoed.bodyBytes == body.count)
                #expect(echoed.checksum == E2E.checksum(body))
            }
        }
    }
}
