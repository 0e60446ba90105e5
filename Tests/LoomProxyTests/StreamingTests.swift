import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Bodies in both directions: chunked requests with trailers, re-chunking and
    /// close-delimiting responses per client version, and large bodies under backpressure.
    @Suite(.serialized) struct StreamingTests {
        @Test func chunkedRequestWithTrailerReachesBackend() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n")
                try client.send("5\r\nhello\r\n")
                try client.send("6;name=value\r\n world\r\n")
                try client.send("1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 42\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                let body = Array("hello worldabcdefghijklmnopqrstuvwxyz".utf8)
                #expect(echoed.bodyBytes == body.count)
                #expect(echoed.checksum == E2E.checksum(body))
            }
        }

        @Test func chunkedResponseRechunkedForHTTP11() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                for _ in 0..<2 {
                    try client.send("GET /stream?bytes=300000&chunked=1 HTTP/1.1\r\nHost: test.local\r\n\r\n")
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    #expect(response.header("transfer-encoding") == "chunked")
                    #expect(response.header("content-length") == nil)
                    #expect(response.body == E2E.streamPattern(300_000))
                }
            }
        }

        @Test func chunkedResponseCloseDelimitedForHTTP10() async throws {
            try await E2E.withBackend { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET /stream?bytes=200000&chunked=1 HTTP/1.0\r\nHost: test.local\r\nConnection: keep-alive\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                #expect(head.header("transfer-encoding") == nil)
                #expect(head.header("content-length") == nil)
                #expect(head.header("connection")?.lowercased() == "close")
                let (rest, end) = client.readToEnd()
                #expect(end == .eof)
                #expect(rest == E2E.streamPattern(200_000))
            }
        }

        @Test func closeDelimitedUpstreamBecomesChunked() async throws {
            try await E2E.withRawBackend("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end of the connection") { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("transfer-encoding") == "chunked")
                #expect(response.bodyText == "until the end of the connection")
                // The client connection stays usable: the upstream's close ended only the body.
                try client.send("GET /again HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(try client.readResponse().bodyText == "until the end of the connection")
            }
        }

        @Test func earlyHintsRelayedToHTTP11Only() async throws {
            let raw = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            try await E2E.withRawBackend(raw, closeAfter: false) { _, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let hints = try client.readResponse()
                #expect(hints.status == 103)
                #expect(hints.header("link") == "</style.css>; rel=preload")
                let final = try client.readResponse()
                #expect(final.status == 200)
                #expect(final.bodyText == "ok")

                let old = try RawClient(port: proxy.port)
                try old.send("GET / HTTP/1.0\r\nHost: test.local\r\n\r\n")
                let response = try old.readResponse()
                #expect(response.status == 200)
                #expect(response.bodyText == "ok")
            }
        }

        @Test func responseContentLengthListIsNormalized() async throws {
            try await E2E.withRawBackend("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", closeAfter: false) { _, proxy in
                let response = try proxy.get("/")
                #expect(response.status == 200)
                #expect(response.headers("content-length") == ["2"])
                #expect(response.bodyText == "ok")
            }
        }

        @Test func download64MiB() async throws {
            try await E2E.withBackend { _, proxy in
                let total = 64 * 1024 * 1024
                let client = try RawClient(port: proxy.port, timeout: 20)
                try client.send("GET /stream?bytes=\(total) HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                #expect(head.header("content-length") == String(total))
                var offset = 0
                var mismatches = 0
                let received = client.readBody(count: total) { slice in
                    for byte in slice {
                        if byte != UInt8(truncatingIfNeeded: offset % 251) { mismatches += 1 }
                        offset += 1
                    }
                }
                #expect(received == total)
                #expect(mismatches == 0)
                // The connection is still good for another request.
                try client.send("GET /echo HTTP/1.1\r\nHost: test.local\r\n\r\n")
                #expect(try client.readResponse().status == 200)
            }
        }

        @Test func upload64MiB() async throws {
            try await E2E.withBackend { _, proxy in
                let block = E2E.streamPattern(1024 * 1024)
                let blocks = 64
                let client = try RawClient(port: proxy.port, timeout: 20)
                try client.send("PUT /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: \(block.count * blocks)\r\n\r\n")
                var sum: UInt64 = 0
                for _ in 0..<blocks {
                    try client.send(block)
                    for byte in block { sum = sum &* 31 &+ UInt64(byte) }
                }
                let response = try client.readResponse()
                #expect(response.status == 200)
                let echoed = try EchoedRequest(response)
                #expect(echoed.bodyBytes == block.count * blocks)
                #expect(echoed.checksum == String(sum))
            }
        }
    }
}
