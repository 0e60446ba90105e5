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
    /// Whether `head` asks for a WebSocket: `GET` over HTTP/1.1 without a body,
    /// `Connection: upgrade` and `websocket` among the `Upgrade` protocols. (An HTTP/2
    /// stream never asks this way: RFC 9113 §8.2.2 forbids the fields.)
    static func isRequested(by head: HTTPRequestHead) -> Bool {
        guard head.method == "GET", head.minorVersion == 1, head.framing == .none,
            head.connectionTokens.contains("upgrade")
        else { return false }
        return offersWebSocket(head.headers)
    }

    /// Whether `head` accepts the upgrade Loom forwarded: `101` with `Upgrade: websocket`
    /// and `Connection: upgrade` (RFC 6455 §4.2.2). A `101` naming another protocol, or
    /// none, would leave both ends speaking different things: it is an invalid answer.
    static func isAccepted(by head: HTTPResponseHead) -> Bool {
        head.status == 101 && head.connectionTokens.contains("upgrade") && offersWebSocket(head.headers)
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

extension Substring {
    /// Without the optional whitespace (spaces and tabs) around a list element (RFC 9110 §5.6.1).
    fileprivate func trimmingWhitespace() -> Substring {
        var trimmed = self
        while let first = trimmed.first, first == " " || first == "\t" { trimmed.removeFirst() }
        while let last = trimmed.last, last == " " || last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
