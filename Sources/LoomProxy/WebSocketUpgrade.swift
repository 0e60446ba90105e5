import Crypto
import Foundation
import LoomHTTP

/// When an HTTP/1.1 exchange becomes a WebSocket (RFC 6455 §4), as pure rules on parsed heads.
///
/// Upgrades are hop-by-hop (RFC 9110 §7.8): a proxy forwards one only by choice. Loom
/// forwards exactly the WebSocket upgrade, on any proxied route (as HAProxy and Traefik do,
/// and as WarpDrive's ActionCable routes expect without a setting); every other `Upgrade`
/// (h2c, TLS/1.0, private protocols) is dropped as any hop-by-hop field is, and the request
/// is answered as plain HTTP. The upstream then decides: its `101` turns the connection into
/// a byte tunnel, any other answer is an ordinary response.
enum WebSocketUpgrade {
    /// The handshake's `Sec-WebSocket-Key` when `head` asks for a WebSocket: `GET` over
    /// HTTP/1.1 without a body, `Connection: upgrade`, `websocket` among the `Upgrade`
    /// protocols and a key; nil otherwise. (An HTTP/2 stream asks with RFC 8441's extended
    /// CONNECT, which `HTTP2RequestTranslator` writes as this handshake; RFC 9113 §8.2.2
    /// forbids the fields themselves on a stream.)
    static func key(of head: HTTPRequestHead) -> String? {
        guard head.method == "GET", head.minorVersion == 1, head.framing == .none,
            head.connectionTokens.contains("upgrade"), offersWebSocket(head.headers)
        else { return nil }
        return head.headers.firstValue(named: "sec-websocket-key")
    }

    /// Whether `head` accepts the upgrade Loom forwarded with `key`: `101` with
    /// `Upgrade: websocket`, `Connection: upgrade` and the `Sec-WebSocket-Accept` derived
    /// from the key (RFC 6455 §4.2.2). Anything less is an invalid answer: a backend that
    /// lets a client choose its status and fields must not be able to open a raw tunnel
    /// past loom's routing and filters ("WebSocket smuggling"), and a `101` naming another
    /// protocol would leave both ends speaking different things.
    static func isAccepted(by head: HTTPResponseHead, key: String) -> Bool {
        head.status == 101 && head.connectionTokens.contains("upgrade") && offersWebSocket(head.headers)
            && head.headers.firstValue(named: "sec-websocket-accept")?.trimmingWhitespace() == Substring(accept(for: key))
    }

    /// A fresh `Sec-WebSocket-Key` (16 random bytes, base64), for a handshake loom makes
    /// on a client's behalf (RFC 8441 has no key: the HTTP/2 client's stream is already
    /// known to want a WebSocket).
    static func newKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    /// `Sec-WebSocket-Accept` for `key`: base64 of SHA-1 over the key and RFC 6455's GUID.
    static func accept(for key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
    }

    /// `websocket` (any case) among the comma-separated protocols of the `Upgrade` fields.
    private static func offersWebSocket(_ fields: HTTPHeaderBlock) -> Bool {
        for index in 0..<fields.count where fields.name(at: index, equals: "upgrade") {
            for token in fields.value(at: index).split(separator: ",") {
                if token.trimmingWhitespace().lowercased() == "websocket" { return true }
            }
        }
        return false
    }
}

extension StringProtocol {
    /// Without the optional whitespace (spaces and tabs) around a list element (RFC 9110 §5.6.1).
    func trimmingWhitespace() -> SubSequence {
        var trimmed = self[...]
        while let first = trimmed.first, first == " " || first == "\t" { trimmed.removeFirst() }
        while let last = trimmed.last, last == " " || last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
