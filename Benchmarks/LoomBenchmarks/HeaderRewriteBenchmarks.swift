import Benchmark
import LoomConfig
import LoomHTTP
import LoomProxy
import LoomRouting
import NIOCore

/// Header rewrite, both directions, as the data path does it for one proxied request: parse
/// the head from the received bytes, then write the edited head into a fresh buffer sized the
/// way `DownstreamHandler` sizes it (received head + 256 bytes for the request, + 128 for the
/// response). The buffer allocation is part of the figure because the proxy pays it per head.
///
/// Per-request values that other components produce (request id, `Date`) are fixed strings
/// here: generating them has its own cost, not the rewrite's.
enum HeaderRewriteBenchmarks {
    /// What Chrome sends for a same-origin navigation, with cookies; 16 fields, 875 bytes.
    static let browserRequest = """
        GET /api/v1/orders/12345?expand=items,customer HTTP/1.1\r
        Host: api.example.com\r
        Connection: keep-alive\r
        sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r
        sec-ch-ua-mobile: ?0\r
        sec-ch-ua-platform: "Linux"\r
        Upgrade-Insecure-Requests: 1\r
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r
        Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r
        Sec-Fetch-Site: same-origin\r
        Sec-Fetch-Mode: navigate\r
        Sec-Fetch-User: ?1\r
        Sec-Fetch-Dest: document\r
        Referer: https://api.example.com/orders\r
        Accept-Encoding: gzip, deflate, br, zstd\r
        Accept-Language: en-US,en;q=0.9,de;q=0.8\r
        Cookie: _session_id=9f1c2ab45e7d4c0f8a1b3e5d7c9f0a2b; _ga=GA1.1.1234567890.1732000000; _ga_ABC123=GS1.1.1732000000.3.1.1732000500.0.0.0; theme=dark\r
        \r

        """

    /// A Rails/Puma JSON response with the usual security and caching fields; 14 fields, 533 bytes.
    static let backendResponse = """
        HTTP/1.1 200 OK\r
        Server: Puma\r
        Date: Tue, 02 Dec 2025 05:40:00 GMT\r
        Content-Type: application/json; charset=utf-8\r
        Content-Length: 1834\r
        Connection: keep-alive\r
        Keep-Alive: timeout=20\r
        Cache-Control: max-age=0, private, must-revalidate\r
        ETag: W/"7b2a-5f8d1e0c9a3b2d4e6f8a0b1c2d3e4f5a"\r
        Vary: Accept, Origin\r
        X-Frame-Options: SAMEORIGIN\r
        X-Content-Type-Options: nosniff\r
        Referrer-Policy: strict-origin-when-cross-origin\r
        X-Runtime: 0.012345\r
        Set-Cookie: _session_id=9f1c2ab45e7d4c0f8a1b3e5d7c9f0a2b; path=/; HttpOnly; SameSite=Lax\r
        \r

        """

    static let requestID = RequestID(prefix: 0x5f0c_2d9e_8a7b_6c4d, counter: 0x2a3f)
    static let date = "Tue, 02 Dec 2025 05:40:00 GMT"

    static func register() {
        let snapshot = ProxySnapshot(GatewayConfiguration.configuration)
        let route = GatewayConfiguration.ordersRoute
        // What `DownstreamHandler` takes from the matched route and the connection.
        let context = HeadWriter.RequestContext(
            target: "/api/v1/orders/12345?expand=items,customer", clientIP: "203.0.113.7", clientTrusted: false,
            listenerPort: 443, requestID: requestID, endpointAuthority: "10.0.0.5:3000",
            rules: PreparedHeaderRules(route.requestHeaders))
        let allocator = ByteBufferAllocator()
        let requestBytes = ByteBuffer(string: browserRequest)
        let responseBytes = ByteBuffer(string: backendResponse)

        Benchmark("Header rewrite: request (parse + write upstream head)") { benchmark in
            var parser = HTTP1HeadParser(limits: snapshot.requestLimits)
            for _ in benchmark.scaledIterations {
                // A copy of the buffer shares its storage: only the reader index moves.
                var input = requestBytes
                guard let head = try? parser.parseRequestHead(&input) else {
                    preconditionFailure("the sample request head must parse")
                }
                var out = allocator.buffer(capacity: head.headers.bytes.readableBytes + HeadWriter.requestHeadSlack)
                HeadWriter.writeRequestHead(head, context, snapshot: snapshot, into: &out)
                blackHole(out)
            }
        }

        Benchmark("Header rewrite: response (parse + write downstream head)") { benchmark in
            var parser = HTTP1HeadParser(limits: snapshot.responseLimits)
            for _ in benchmark.scaledIterations {
                var input = responseBytes
                // `UpstreamConnection.attach` resets the parser before each exchange.
                parser.reset()
                guard let head = try? parser.parseResponseHead(&input, requestMethod: "GET") else {
                    preconditionFailure("the sample response head must parse")
                }
                let framing = HeadWriter.responseFraming(upstream: head.framing, clientMinorVersion: 1)
                var out = allocator.buffer(capacity: head.headers.bytes.readableBytes + HeadWriter.responseHeadSlack)
                HeadWriter.writeResponseHead(
                    head, framing: framing, requestID: requestID, closeConnection: false, clientMinorVersion: 1,
                    date: date, snapshot: snapshot, into: &out)
                blackHole(out)
            }
        }
    }
}
