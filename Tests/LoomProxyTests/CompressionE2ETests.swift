import Foundation
import CompressNIO
import NIOCore
import LoomConfig
import Testing

@testable import LoomProxy

/// Response compression through a running proxy: curl's `--compressed` decodes what loom
/// sends, large streamed bodies included; negotiation, `Vary`, framing for HTTP/1.0 clients,
/// and WarpDrive's `gzip_compression_enabled`.
extension ProxyE2E {
    @Suite struct CompressionE2ETests {
        static let config = """
            filters: [{type: compression, min_size: 1k}]
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
            routes: [{id: all, upstream: app}]
            """

        @Test func curlDecodesCompressedBodiesWithAndWithoutALength() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                for (coding, framing) in [("gzip", ""), ("gzip", "&chunked=1"), ("deflate", "")] {
                    let url = "http://127.0.0.1:\(proxy.port)/stream?bytes=1000000&type=text/plain\(framing)"
                    let result = try E2E.curl(["--compressed", "-H", "Accept-Encoding: \(coding)", "--dump-header", "-", "--output", "/dev/null", "--write-out", "size=%{size_download}", url])
                    #expect(result.status == 0, "\(result.stderr)")
                    let headers = String(decoding: result.stdout, as: UTF8.self).lowercased()
                    #expect(headers.contains("content-encoding: \(coding)"), "\(headers)")
                    #expect(headers.contains("transfer-encoding: chunked") && !headers.contains("content-length"))
                    let downloaded = try #require(headers.range(of: "size=").flatMap { Int(headers[$0.upperBound...]) }, "\(headers)")
                    #expect(downloaded < 100_000, "the pattern compresses well: \(downloaded) bytes sent")

                    let decoded = try E2E.curl(["--compressed", "-H", "Accept-Encoding: \(coding)", url])
                    #expect(decoded.status == 0 && Array(decoded.stdout) == E2E.streamPattern(1_000_000), "curl decodes the body loom sent")
                }
            }
        }

        @Test func negotiationVaryAndWhatStaysUncompressed() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let deflate = try proxy.get("/stream?bytes=5000&type=text/css", headers: ["Accept-Encoding: gzip;q=0.5, deflate"])
                #expect(deflate.header("content-encoding") == "deflate")
                #expect(deflate.headers("vary") == ["Accept-Encoding"])
                var body = ByteBuffer(bytes: deflate.body)
                #expect(Array(try body.decompress(with: .zlib()).readableBytesView) == E2E.streamPattern(5000))

                let plain = try proxy.get("/stream?bytes=5000&type=text/css")
                #expect(plain.header("content-encoding") == nil && plain.header("content-length") == "5000")
                #expect(plain.headers("vary") == ["Accept-Encoding"], "the uncompressed variant says it varies too")
                let small = try proxy.get("/stream?bytes=500&type=text/css", headers: ["Accept-Encoding: gzip"])
                #expect(small.header("content-encoding") == nil && small.body.count == 500, "below min_size")
                let image = try proxy.get("/stream?bytes=5000&type=image/png", headers: ["Accept-Encoding: gzip"])
                #expect(image.header("content-encoding") == nil && image.header("vary") == nil)
                let client = try RawClient(port: proxy.port)
                try client.send("HEAD /stream?bytes=5000&type=text/css HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
                let head = try client.readResponse(headRequest: true)
                #expect(head.status == 200 && head.header("content-encoding") == nil && head.header("vary") == "Accept-Encoding")
            }
        }

        /// An HTTP/1.0 client cannot take chunks: the compressed body ends with the connection.
        @Test func http10ClientsGetACloseDelimitedBody() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config) { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /stream?bytes=20000&type=text/plain HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
                let (data, end) = client.readToEnd()
                #expect(end == .eof)
                let response = try #require(RawResponse.parse(data, atEOF: true))
                #expect(response.header("content-encoding") == "gzip")
                #expect(response.header("transfer-encoding") == nil && response.header("content-length") == nil)
                var body = ByteBuffer(bytes: response.body)
                #expect(Array(try body.decompress(with: .gzip()).readableBytesView) == E2E.streamPattern(20000))
            }
        }

        @Test func warpDriveGzipFlag() async throws {
            try await E2E.withBackends(1, dialect: .warpDriveTOML, """
                [middleware]
                gzip_compression_enabled = true
                [upstreams.app]
                host = "127.0.0.1"
                port = {port0}
                [[routes]]
                path_prefix = "/"
                upstream = "app"
                """) { _, proxy in
                let url = "http://127.0.0.1:\(proxy.port)/stream?bytes=300000&type=application/json"
                let result = try E2E.curl(["--compressed", url])
                #expect(result.status == 0 && Array(result.stdout) == E2E.streamPattern(300_000))
                let deflateOnly = try proxy.get("/stream?bytes=5000&type=application/json", headers: ["Accept-Encoding: deflate"])
                #expect(deflateOnly.header("content-encoding") == nil, "the flag offers gzip only")
            }
        }
    }
}
