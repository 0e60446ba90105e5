import LoomHTTP
import NIOCore
import NIOHPACK

/// The HTTP/1.1 `Upgrade: h2c` request (RFC 7540 §3.2; RFC 9113 deprecates it but curl and
/// others still send it) on an `h2c` listener: whether a request asks for it in a way loom
/// takes, and the HTTP/2 HEADERS frame that carries the request on as stream 1.
///
/// Loom upgrades only a first request without a body (a body would have to be read in
/// HTTP/1.1 before switching); anything else is answered in HTTP/1.1, which the RFC allows
/// (a server may ignore Upgrade). A pure value: no channel.
enum H2CUpgrade {
    /// The largest header block sent as one frame: the default SETTINGS_MAX_FRAME_SIZE, the
    /// most the client can have agreed to before any SETTINGS were exchanged.
    static let maxBlock = 16384

    /// The request as HTTP/2 fields (`:method`, `:scheme`, `:authority`, `:path`, then the
    /// fields minus the connection-specific ones) if `head` asks to upgrade to h2c with
    /// everything the RFC requires: `Upgrade: h2c`, one well-formed `HTTP2-Settings` named in
    /// `Connection`, a Host, no body.
    static func fields(of head: HTTPRequestHead) -> HPACKHeaders? {
        let fields = head.headers
        guard head.framing == .none, head.minorVersion == 1, let host = head.host, head.path.utf8.first == UInt8(ascii: "/"),
              head.connectionTokens.contains("upgrade"), head.connectionTokens.contains("http2-settings"),
              let upgrade = fields.firstValue(named: "upgrade"),
              upgrade.lowercased().split(separator: ",").contains(where: { $0.filter { $0 != " " && $0 != "\t" } == "h2c" }),
              fields.count(named: "http2-settings") == 1,
              let settings = fields.firstValue(named: "http2-settings"), isSettingsPayload(settings)
        else { return nil }
        var h2 = HPACKHeaders()
        h2.add(name: ":method", value: head.method, indexing: .nonIndexable)
        h2.add(name: ":scheme", value: "http", indexing: .nonIndexable)
        h2.add(name: ":authority", value: host, indexing: .nonIndexable)
        h2.add(name: ":path", value: head.target, indexing: .nonIndexable)
        let dropped = HTTP2ResponseTranslator.connectionSpecific.union(["host", "http2-settings", "te"])
        for index in 0..<fields.count {
            let name = fields.name(at: index).lowercased()
            guard !dropped.contains(name), !head.connectionTokens.contains(name) else { continue }
            // Never indexed: the server's HPACK decoder state stays what the client's encoder
            // assumes (it never sent this block).
            h2.add(name: name, value: fields.value(at: index), indexing: .nonIndexable)
        }
        return h2
    }

    /// `HTTP2-Settings`: a base64url SETTINGS payload (six bytes per setting), no padding.
    static func isSettingsPayload(_ value: String) -> Bool {
        let bytes = value.utf8
        guard bytes.allSatisfy({ byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }) else { return false }
        // Each 6-byte setting is 8 base64 characters: a whole number of settings.
        return bytes.count % 8 == 0
    }

    /// The HEADERS frame (END_STREAM, END_HEADERS) of stream 1 for `fields`; nil when the
    /// block would not fit one frame (the request is then served in HTTP/1.1).
    static func headersFrame(_ fields: HPACKHeaders) -> ByteBuffer? {
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var block = ByteBuffer()
        guard (try? encoder.encode(headers: fields, to: &block)) != nil, block.readableBytes <= maxBlock else { return nil }
        var frame = ByteBuffer()
        frame.reserveCapacity(9 + block.readableBytes)
        frame.writeInteger(UInt8(truncatingIfNeeded: block.readableBytes >> 16))
        frame.writeInteger(UInt16(truncatingIfNeeded: block.readableBytes))
        frame.writeInteger(UInt8(0x1))  // HEADERS
        frame.writeInteger(UInt8(0x1 | 0x4))  // END_STREAM | END_HEADERS
        frame.writeInteger(UInt32(1))  // stream 1
        frame.writeBuffer(&block)
        return frame
    }

    /// What loom answers before its own connection preface.
    static let switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
}
