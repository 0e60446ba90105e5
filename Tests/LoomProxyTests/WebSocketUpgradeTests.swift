import LoomConfig
import LoomHTTP
import NIOCore
import Testing

@testable import LoomProxy

/// Which exchanges become WebSockets, and the heads loom writes for them, without sockets.
@Suite struct WebSocketUpgradeTests {
    static func request(_ raw: String) throws -> HTTPRequestHead {
        var bytes = ByteBuffer(string: raw)
        var parser = HTTP1HeadParser()
        return try #require(try parser.parseRequestHead(&bytes))
    }

    static func response(_ raw: String) throws -> HTTPResponseHead {
        var bytes = ByteBuffer(string: raw)
        var parser = HTTP1HeadParser()
        return try #require(try parser.parseResponseHead(&bytes, requestMethod: "GET"))
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n", true),
        // Firefox's spelling, any case, and a list of protocols.
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: k\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo/1, websocket\r\nSec-WebSocket-Key: k\r\n\r\n", true),
        // Not a WebSocket: no key, another protocol, no Connection token, HTTP/1.0, another
        // method, a body.
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Key: k\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n", false),
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nContent-Length: 1\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websockets\r\nSec-WebSocket-Key: k\r\n\r\n", false),
    ])
    func whichRequestsAskForAWebSocket(raw: String, asks: Bool) throws {
        #expect((WebSocketUpgrade.key(of: try Self.request(raw)) == "k") == asks)
    }

    /// RFC 6455 §1.3's example key and answer.
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    @Test func onlyASwitchToWebSocketWithTheRightAnswerAccepts() throws {
        #expect(WebSocketUpgrade.accept(for: Self.key) == Self.accept)
        func accepts(_ raw: String) throws -> Bool { WebSocketUpgrade.isAccepted(by: try Self.response(raw), key: Self.key) }
        #expect(try accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\n"))
        #expect(try !accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"))
        #expect(try !accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
        #expect(try !accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\n"))
        #expect(try !accepts("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: \(Self.accept)\r\n\r\n"))
        #expect(try !accepts("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(Self.accept)\r\nContent-Length: 0\r\n\r\n"))
    }

    static let snapshot = ProxySnapshot(LoomConfiguration(origin: .environment))

    static func upstreamHead(_ raw: String, upgrade: Bool) throws -> String {
        let context = HeadWriter.RequestContext(
            target: "/chat", clientIP: "10.0.0.1", clientTrusted: false, listenerPort: 80, requestID: RequestID(given: "id"), endpointAuthority: "b:1", rules: .none,
            upgrade: upgrade)
        var out = ByteBuffer()
        HeadWriter.writeRequestHead(try request(raw), context, snapshot: snapshot, into: &out)
        return String(buffer: out)
    }

    /// The upgrade's fields go on only for a WebSocket; other hop-by-hop fields never do.
    @Test func theUpstreamRequestKeepsTheUpgradeFields() throws {
        // The client offers h2c too: only the WebSocket goes upstream.
        let raw = "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade, X-Hop\r\nUpgrade: h2c, websocket\r\nX-Hop: 1\r\nSec-WebSocket-Key: k\r\n\r\n"
        let upgraded = try Self.upstreamHead(raw, upgrade: true)
        #expect(upgraded.contains("\r\nUpgrade: websocket\r\n") && upgraded.contains("\r\nConnection: upgrade\r\n") && upgraded.contains("Sec-WebSocket-Key: k"))
        #expect(!upgraded.contains("h2c"), "\(upgraded)")
        #expect(!upgraded.contains("X-Hop") && !upgraded.contains("keep-alive"), "\(upgraded)")
        let plain = try Self.upstreamHead(raw, upgrade: false)
        #expect(!plain.contains("Upgrade") && !plain.contains("Connection") && plain.contains("Sec-WebSocket-Key: k"), "\(plain)")
    }

    @Test func theSwitchReachesTheClientWithItsUpgradeFields() throws {
        let head = try Self.response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: a\r\n\r\n")
        var out = ByteBuffer()
        // The connection goes on as a tunnel: never `Connection: close` on a 101.
        HeadWriter.writeResponseHead(
            head, framing: .none, requestID: RequestID(given: "id"), closeConnection: true, clientMinorVersion: 1, date: "d", snapshot: Self.snapshot, into: &out)
        let text = String(buffer: out)
        #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n") && text.contains("\r\nUpgrade: websocket\r\n"), "\(text)")
        #expect(text.contains("\r\nConnection: upgrade\r\n") && !text.contains("close") && text.contains("Sec-WebSocket-Accept: a"))
    }
}
