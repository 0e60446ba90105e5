import LoomConfig
import LoomHTTP
import NIOCore

/// Writes the heads Loom forwards: the request head sent upstream and the response head sent
/// back, both edited in one pass over the received fields (no header dictionary).
///
/// Request edits: hop-by-hop fields and every field named in `Connection` removed; `Expect`
/// removed (Loom answers `100 Continue` itself); `X-Forwarded-*` / `Forwarded` rebuilt, keeping
/// the incoming values only from trusted proxies; `Via` appended; the request id set; route
/// `add_headers` appended; framing re-declared from the parsed framing (`Transfer-Encoding:
/// chunked` when re-chunking, one normalized `Content-Length`).
enum HeadWriter {
    /// Fields that describe one connection, never forwarded (RFC 9110 §7.6.1), lower-case.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
    ]

    /// Per-request facts the request head needs besides the client's own head.
    struct RequestContext {
        var target: String
        var clientIP: String?
        var clientTrusted: Bool
        var listenerPort: Int
        var requestID: String
        /// `host:port` of the chosen endpoint, for `preserve_host: false` or a missing Host.
        var endpointAuthority: String
        var addHeaders: [HeaderPair]
        /// `addHeaders` names, lower-cased (`ProxySnapshot.Route.addedHeaderNames`).
        var addedHeaderNames: Set<String>
    }

    static func writeRequestHead(
        _ head: HTTPRequestHead, _ request: RequestContext, snapshot: ProxySnapshot, into out: inout ByteBuffer
    ) {
        let forwarding = snapshot.forwarding
        let fields = head.headers
        out.writeString(head.method)
        out.writeString(" ")
        out.writeString(request.target)
        out.writeString(" HTTP/1.1\r\n")
        // Host is always Loom's own: the host the request was routed on (for an absolute-form
        // target that is its authority, RFC 9110 §7.2), or the endpoint's. Never a copy of the
        // client's field, so upstream and router cannot disagree on it.
        let host = forwarding.preserveHost ? (head.host ?? request.endpointAuthority) : request.endpointAuthority
        writeField("Host", host, into: &out)

        var forwardedFor: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        var forwardedPort: String?
        var forwardedRFC: [String] = []
        for index in 0..<fields.count {
            // Fields Loom re-declares below (so no `Connection` token can remove them either).
            if fields.name(at: index, equals: "host") || fields.name(at: index, equals: "content-length")
                || fields.name(at: index, equals: snapshot.requestIDHeaderLowercased)
                || fields.name(at: index, equals: "expect")
                || isConnectionSpecific(fields, index, tokens: head.connectionTokens)
            {
                continue
            }
            // Forwarding fields: believed (kept or extended) only from trusted proxies, and
            // always dropped from anyone else, whether or not Loom adds its own.
            if let kind = ForwardingField(fields, index) {
                guard request.clientTrusted else { continue }
                let rebuilt = kind == .forwarded ? forwarding.forwarded : forwarding.xForwarded
                guard rebuilt else {
                    fields.writeField(at: index, into: &out)
                    continue
                }
                switch kind {
                case .forwardedFor: forwardedFor.append(fields.value(at: index))
                case .forwardedProto: forwardedProto = fields.value(at: index)
                case .forwardedHost: forwardedHost = fields.value(at: index)
                case .forwardedPort: forwardedPort = fields.value(at: index)
                case .forwarded: forwardedRFC.append(fields.value(at: index))
                }
                continue
            }
            fields.writeField(at: index, into: &out)
        }

        // Framing is re-declared from what the parser decided, never copied: a list such as
        // `Content-Length: 5, 5` (accepted, RFC 9110 §8.6) must reach the upstream as one value.
        switch head.framing {
        case .chunked: writeField("Transfer-Encoding", "chunked", into: &out)
        case .contentLength(let length): writeField("Content-Length", String(length), into: &out)
        case .none, .untilClose: break
        }
        // A route's `add_headers` may set a forwarding field itself (WarpDrive's example sets
        // X-Forwarded-Host): then it replaces the one Loom would generate, never doubles it.
        func generated(_ lowercasedName: String) -> Bool {
            !request.addedHeaderNames.contains(lowercasedName)
        }
        let client = request.clientIP ?? "unknown"
        if forwarding.xForwarded {
            forwardedFor.append(client)
            if generated("x-forwarded-for") {
                writeField("X-Forwarded-For", forwardedFor.joined(separator: ", "), into: &out)
            }
            if generated("x-forwarded-proto") { writeField("X-Forwarded-Proto", forwardedProto ?? "http", into: &out) }
            if generated("x-forwarded-host"), let host = forwardedHost ?? head.host {
                writeField("X-Forwarded-Host", host, into: &out)
            }
            if generated("x-forwarded-port") {
                writeField("X-Forwarded-Port", forwardedPort ?? String(request.listenerPort), into: &out)
            }
        }
        if forwarding.forwarded && generated("forwarded") {
            forwardedRFC.append(forwardedElement(client: request.clientIP, host: head.host))
            writeField("Forwarded", forwardedRFC.joined(separator: ", "), into: &out)
        }
        // Via names the protocol version this hop received (RFC 9110 §7.6.3).
        if forwarding.via && generated("via") { writeField("Via", "1.\(head.minorVersion) loom", into: &out) }
        writeField(forwarding.requestIDHeader, request.requestID, into: &out)
        for header in request.addHeaders { writeField(header.name, header.value, into: &out) }
        out.writeString("\r\n")
    }

    /// The client-supplied forwarding fields Loom rebuilds or drops.
    enum ForwardingField {
        case forwardedFor, forwardedProto, forwardedHost, forwardedPort, forwarded

        init?(_ fields: HTTPHeaderBlock, _ index: Int) {
            if fields.name(at: index, equals: "x-forwarded-for") {
                self = .forwardedFor
            } else if fields.name(at: index, equals: "x-forwarded-proto") {
                self = .forwardedProto
            } else if fields.name(at: index, equals: "x-forwarded-host") {
                self = .forwardedHost
            } else if fields.name(at: index, equals: "x-forwarded-port") {
                self = .forwardedPort
            } else if fields.name(at: index, equals: "forwarded") {
                self = .forwarded
            } else {
                return nil
            }
        }
    }

    /// How the response body travels to the client.
    enum ResponseFraming: Equatable {
        case none
        /// Bytes as the upstream framed them by length.
        case contentLength
        /// Re-encoded as chunks (HTTP/1.1 clients, upstream chunked or close-delimited).
        case chunked
        /// Raw bytes, ended by closing (HTTP/1.0 clients without a known length).
        case untilClose
    }

    /// The downstream framing for an upstream response to a client of `clientMinorVersion`.
    static func responseFraming(upstream: HTTPBodyFraming, clientMinorVersion: Int) -> ResponseFraming {
        switch upstream {
        case .none: .none
        case .contentLength: .contentLength
        case .chunked, .untilClose: clientMinorVersion >= 1 ? .chunked : .untilClose
        }
    }

    /// `date` is added when the upstream sent none (RFC 9110 §6.6.1: a recipient with a clock
    /// forwarding such a response must).
    static func writeResponseHead(
        _ head: HTTPResponseHead, framing: ResponseFraming, requestID: String, closeConnection: Bool,
        clientMinorVersion: Int, date: String, snapshot: ProxySnapshot, into out: inout ByteBuffer
    ) {
        let fields = head.headers
        out.writeString("HTTP/1.1 \(head.status) ")
        out.writeString(head.reason)
        out.writeString("\r\n")
        // A body framed by length gets one normalized Content-Length (see the request side);
        // bodiless responses (HEAD, 304) keep theirs as sent: it describes another response.
        // 1xx and 204 must not carry a length at all (RFC 9110 §8.6).
        var length: Int?
        if case .contentLength(let n) = head.framing { length = n }
        let lengthForbidden = head.status < 200 || head.status == 204
        for index in 0..<fields.count {
            if isConnectionSpecific(fields, index, tokens: head.connectionTokens)
                || fields.name(at: index, equals: snapshot.requestIDHeaderLowercased)
                || ((length != nil || lengthForbidden) && fields.name(at: index, equals: "content-length"))
            {
                continue
            }
            fields.writeField(at: index, into: &out)
        }
        if let length { writeField("Content-Length", String(length), into: &out) }
        if framing == .chunked { writeField("Transfer-Encoding", "chunked", into: &out) }
        if !fields.contains("date") { writeField("Date", date, into: &out) }
        if snapshot.forwarding.via { writeField("Via", "1.\(head.minorVersion) loom", into: &out) }
        writeField(snapshot.forwarding.requestIDHeader, requestID, into: &out)
        if closeConnection {
            writeField("Connection", "close", into: &out)
        } else if clientMinorVersion == 0 {
            writeField("Connection", "keep-alive", into: &out)
        }
        out.writeString("\r\n")
    }

    /// The last chunk of a re-chunked response, with the upstream's trailer fields minus any
    /// hop-by-hop ones (which describe the upstream connection, not this one).
    static func writeLastChunk(trailers: HTTPHeaderBlock?, into out: inout ByteBuffer) {
        out.writeString("0\r\n")
        if let trailers {
            for index in 0..<trailers.count where !isConnectionSpecific(trailers, index, tokens: []) {
                trailers.writeField(at: index, into: &out)
            }
        }
        out.writeString("\r\n")
    }

    /// A 1xx interim response relayed to an HTTP/1.1 client.
    static func writeInformationalHead(_ head: HTTPResponseHead, into out: inout ByteBuffer) {
        out.writeString("HTTP/1.1 \(head.status) ")
        out.writeString(head.reason)
        out.writeString("\r\n")
        for index in 0..<head.headers.count where !isConnectionSpecific(head.headers, index, tokens: head.connectionTokens) {
            head.headers.writeField(at: index, into: &out)
        }
        out.writeString("\r\n")
    }

    static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeString(name)
        out.writeString(": ")
        out.writeString(value)
        out.writeString("\r\n")
    }

    private static func isConnectionSpecific(_ fields: HTTPHeaderBlock, _ index: Int, tokens: [String]) -> Bool {
        for name in hopByHop where fields.name(at: index, equals: name) { return true }
        for token in tokens where fields.name(at: index, equals: token) { return true }
        return false
    }

    /// One RFC 7239 element: `for="[2001:db8::1]";host="example.com";proto=http`.
    static func forwardedElement(client: String?, host: String?) -> String {
        var element: String
        if let client {
            element = client.contains(":") ? "for=\"[\(client)]\"" : "for=\(client)"
        } else {
            element = "for=unknown"
        }
        if let host {
            var quoted = ""
            JSONText.appendQuoted(host, to: &quoted)
            element += ";host=\(quoted)"
        }
        return element + ";proto=http"
    }
}

extension Endpoint {
    /// The `Host` value naming this endpoint (when the client's is not kept): `host:port`, or
    /// `localhost` for a unix socket, which has no authority of its own.
    var authority: String {
        switch self {
        case .tcp: description
        case .unix: "localhost"
        }
    }
}
