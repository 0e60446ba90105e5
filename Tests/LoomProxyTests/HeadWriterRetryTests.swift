import LoomConfig
import LoomHTTP
import NIOCore
import Testing

@testable import LoomProxy

/// A forwarded head larger than the room its buffer was given is written again (`HeadBytes`):
/// what the writer gathers along the way (a trusted client's forwarding values, `TE:
/// trailers`, whether the upstream sent a `Date`) must come out once, as in a roomy buffer.
@Suite struct HeadWriterRetryTests {
    static let snapshot: ProxySnapshot = {
        var config = LoomConfiguration(origin: .environment)
        config.server.forwarding.forwarded = true
        return ProxySnapshot(config)
    }()
    /// Far more than the slack a head is given beyond its received bytes.
    static let rules = PreparedHeaderRules(HeaderRules(add: [HeaderPair(name: "X-Big", value: String(repeating: "b", count: 3000))]))

    static func written(_ write: (inout ByteBuffer) -> Void) -> (tight: String, roomy: String) {
        var tight = ByteBuffer()
        write(&tight)
        var roomy = ByteBuffer()
        roomy.reserveCapacity(64 * 1024)
        write(&roomy)
        return (String(buffer: tight), String(buffer: roomy))
    }

    static func count(_ text: String, _ piece: String) -> Int {
        text.components(separatedBy: piece).count - 1
    }

    @Test func theRequestHeadIsWrittenOnceOverWhenItOutgrowsItsRoom() throws {
        var bytes = ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n"
            + "Forwarded: for=9.9.9.9\r\nTE: trailers\r\nX-Kept: k\r\n\r\n")
        var parser = HTTP1HeadParser()
        let head = try #require(try parser.parseRequestHead(&bytes))
        let context = HeadWriter.RequestContext(
            target: "/a", clientIP: "10.0.0.1", clientTrusted: true, listenerPort: 80, requestID: RequestID(given: "id"), endpointAuthority: "b:1", rules: Self.rules,
            http2Upstream: true)
        let (tight, roomy) = Self.written { HeadWriter.writeRequestHead(head, context, snapshot: Self.snapshot, into: &$0) }
        #expect(tight == roomy)
        #expect(Self.count(tight, "X-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.0.0.1\r\n") == 1, "\(tight.prefix(400))")
        #expect(Self.count(tight, "Forwarded: for=9.9.9.9, for=10.0.0.1;host=\"h\";proto=http\r\n") == 1)
        #expect(Self.count(tight, "TE: trailers\r\n") == 1 && Self.count(tight, "X-Big: ") == 1 && Self.count(tight, "X-Kept: k\r\n") == 1)
        #expect(tight.hasSuffix("b\r\nTE: trailers\r\n\r\n"))
    }

    @Test(arguments: [false, true])
    func theResponseHeadIsWrittenOnceOverWhenItOutgrowsItsRoom(upstreamDate: Bool) throws {
        let date = upstreamDate ? "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" : ""
        var bytes = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\(date)Content-Length: 5\r\nX-Kept: k\r\n\r\n")
        var parser = HTTP1HeadParser()
        let head = try #require(try parser.parseResponseHead(&bytes, requestMethod: "GET"))
        let (tight, roomy) = Self.written {
            HeadWriter.writeResponseHead(
                head, framing: .contentLength, requestID: RequestID(given: "id"), closeConnection: false, clientMinorVersion: 1,
                date: "Mon, 07 Dec 2026 00:00:00 GMT", snapshot: Self.snapshot, rules: Self.rules, into: &$0)
        }
        #expect(tight == roomy)
        #expect(Self.count(tight, "Date: ") == 1 && Self.count(tight, "Content-Length: 5\r\n") == 1 && Self.count(tight, "X-Big: ") == 1)
        #expect(tight.contains(upstreamDate ? "Date: Sun, 06 Nov 1994" : "Date: Mon, 07 Dec 2026"))
    }
}
