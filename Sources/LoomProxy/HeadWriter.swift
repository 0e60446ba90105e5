import LoomConfig
import LoomHTTP
import NIOCore

/// Writes the heads Loom forwards: the request head sent upstream and the response head sent
/// back, both edited in one pass over the received fields (no header dictionary).
///
/// Request edits: hop-by-hop fields and every field named in `Connection` removed; `Expect`
/// removed (Loom answers `100 Continue` itself); `X-Forwarded-*` / `Forwarded` rebuilt, keeping
/// the incoming values only from trusted proxies; `Via` appended; the request id set; the
/// route's header rules applied (`remove_headers` and `set_headers` names dropped, then
/// `set_headers` and `add_headers` appended; the response side likewise); framing re-declared from the parsed framing (`Transfer-Encoding:
/// chunked` when re-chunking, one normalized `Content-Length`).
package enum HeadWriter {
    /// Per-request facts the request head needs besides the client's own head.
    /// Every field is given to `init`, in one call: set one by one after it, the data path's
    /// context was copied twice more per request.
    package struct RequestContext {
        let target: String
        let clientIP: String?
        let clientTrusted: Bool
        /// The listener's port, for `X-Forwarded-Port`.
        let listenerPort: Int
        let requestID: RequestID
        /// `host:port` of the chosen endpoint, for `preserve_host: false` or a missing Host.
        let endpointAuthority: String
        /// The route's `add_headers` / `set_headers` / `remove_headers`.
        let rules: PreparedHeaderRules
        /// A filter's `Host` (`FilterRequest.setAuthority`), sent instead of loom's own.
        let authority: String?
        /// "https" when the client came over TLS (`X-Forwarded-Proto`, `Forwarded`).
        let scheme: String
        /// The listener's `client_identity_header` and the verified client certificate's
        /// subject (a client's own field of any such name never goes upstream:
        /// `ProxySnapshot.clientIdentityHeadersLowercased`).
        let clientIdentity: (header: String, subject: String?)?
        /// A WebSocket upgrade goes on (`WebSocketUpgrade`): `Upgrade: websocket` and
        /// `Connection: upgrade` are sent (not the client's list, which may offer more), where
        /// any other request loses both.
        let upgrade: Bool
        /// The client's request came over HTTP/2: `Via` names the protocol it was received
        /// in (RFC 9110 §7.6.3), not the HTTP/1.1 it is forwarded in.
        let http2: Bool
        /// The request goes to an HTTP/2 upstream, which gets `TE: trailers` when the client
        /// sent it (gRPC servers require it; the one `TE` HTTP/2 allows, RFC 9113 §8.2.2).
        let http2Upstream: Bool
        /// The body goes upstream chunked whatever the client's framing: a filter transforms
        /// it, so its length is known only at its end.
        let chunkedBody: Bool

        /// Spelled out because a memberwise initializer is never more than internal, and the
        /// micro-benchmarks (Benchmarks/LoomBenchmarks) build one as the data path does.
        package init(
            target: String, clientIP: String?, clientTrusted: Bool, listenerPort: Int, requestID: RequestID,
            endpointAuthority: String, rules: PreparedHeaderRules, authority: String? = nil, scheme: String = "http",
            clientIdentity: (header: String, subject: String?)? = nil, upgrade: Bool = false, http2: Bool = false,
            http2Upstream: Bool = false, chunkedBody: Bool = false
        ) {
            self.target = target
            self.clientIP = clientIP
            self.clientTrusted = clientTrusted
            self.listenerPort = listenerPort
            self.requestID = requestID
            self.endpointAuthority = endpointAuthority
            self.rules = rules
            self.authority = authority
            self.scheme = scheme
            self.clientIdentity = clientIdentity
            self.upgrade = upgrade
            self.http2 = http2
            self.http2Upstream = http2Upstream
            self.chunkedBody = chunkedBody
        }
    }

    /// Fields Loom generates, as a set: the ones a route's header rules name are not
    /// generated (`PreparedHeaderRules.replaced`).
    package struct ForwardingFields: OptionSet {
        package let rawValue: UInt8
        static let xForwardedFor = Self(rawValue: 1 << 0)
        static let xForwardedProto = Self(rawValue: 1 << 1)
        static let xForwardedHost = Self(rawValue: 1 << 2)
        static let xForwardedPort = Self(rawValue: 1 << 3)
        static let forwarded = Self(rawValue: 1 << 4)
        static let via = Self(rawValue: 1 << 5)

        /// The generated fields among `names` (any case).
        package init(named names: [String]) {
            self = []
            for name in names {
                switch name.lowercased() {
                case "x-forwarded-for": insert(.xForwardedFor)
                case "x-forwarded-proto": insert(.xForwardedProto)
                case "x-forwarded-host": insert(.xForwardedHost)
                case "x-forwarded-port": insert(.xForwardedPort)
                case "forwarded": insert(.forwarded)
                case "via": insert(.via)
                default: break
                }
            }
        }

        package init(rawValue: UInt8) {
            self.rawValue = rawValue
        }
    }

    /// Room beyond the received head's bytes that the written head usually needs (the
    /// generated fields less the dropped ones). The callers reserve their buffers with the
    /// same figures, so that writing asks for no more than the buffer has; a head that
    /// needs more is written again with more room (`ByteBuffer.writeHead`).
    package static let requestHeadSlack = 256
    package static let responseHeadSlack = 256
    static let informationalHeadSlack = 32

    package static func writeRequestHead(
        _ head: HTTPRequestHead, _ request: RequestContext, snapshot: ProxySnapshot, into out: inout ByteBuffer
    ) {
        out.writeHead(reserving: head.headers.bytes.readableBytes + requestHeadSlack, head, request) { head, request, bytes in
            writeRequestHead(head, request, snapshot: snapshot, into: &bytes)
        }
    }

    private static func writeRequestHead(
        _ head: HTTPRequestHead, _ request: RequestContext, snapshot: ProxySnapshot, into out: inout HeadBytes
    ) {
        let forwarding = snapshot.forwarding
        let fields = head.headers
        out.writeString(head.method)
        out.writeStaticString(" ")
        out.writeString(request.target)
        out.writeStaticString(" HTTP/1.1\r\n")
        // Host is always Loom's own: the host the request was routed on (for an absolute-form
        // target that is its authority, RFC 9110 §7.2), or the endpoint's, unless a filter
        // set one. Never a copy of the client's field, so upstream and router cannot disagree
        // on it.
        let host = request.authority ?? (forwarding.preserveHost ? (head.host ?? request.endpointAuthority) : request.endpointAuthority)
        out.writeField("Host", host)

        // Values of a trusted client's forwarding fields that Loom extends (empty arrays, which
        // allocate nothing, for everyone else).
        var forwardedFor: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        var forwardedPort: String?
        var forwardedRFC: [String] = []
        var teTrailers = false
        fields.writeFields(into: &out) { index in
            let known = fields.knownName(at: index)
            switch known {
            case .te? where request.http2Upstream:
                if fields.value(at: index).split(separator: ",").contains(where: { $0.trimmingWhitespace().lowercased() == "trailers" }) { teTrailers = true }
                return false
            case .host?, .contentLength?, .expect?:
                // Re-declared below (so no `Connection` token can remove them either), or
                // answered by Loom itself (`Expect`).
                return false
            case let known? where known.isHopByHop:
                return false
            default:
                break
            }
            if fields.name(at: index, equals: snapshot.requestIDHeaderLowercased) || isNamedByConnection(fields, index, head.connectionTokens)
                || isNamed(fields, index, request.rules.dropped)
            {
                return false
            }
            if !snapshot.clientIdentityHeadersLowercased.isEmpty, isNamed(fields, index, snapshot.clientIdentityHeadersLowercased) { return false }
            // Forwarding fields: believed (kept or extended) only from trusted proxies, and
            // always dropped from anyone else, whether or not Loom adds its own.
            switch known {
            case .xForwardedFor?, .xForwardedProto?, .xForwardedHost?, .xForwardedPort?, .forwarded?:
                guard request.clientTrusted else { return false }
                let rebuilt = known == .forwarded ? forwarding.forwarded : forwarding.xForwarded
                guard rebuilt else { return true }
                switch known {
                case .xForwardedFor?: forwardedFor.append(fields.value(at: index))
                case .xForwardedProto?: forwardedProto = fields.value(at: index)
                case .xForwardedHost?: forwardedHost = fields.value(at: index)
                case .xForwardedPort?: forwardedPort = fields.value(at: index)
                default: forwardedRFC.append(fields.value(at: index))
                }
                return false
            default:
                return true
            }
        }

        // Framing is re-declared from what the parser decided, never copied: a list such as
        // `Content-Length: 5, 5` (accepted, RFC 9110 §8.6) must reach the upstream as one value.
        switch request.chunkedBody ? .chunked : head.framing {
        case .chunked:
            out.writeStaticString("Transfer-Encoding: chunked\r\n")
        case .contentLength(let length):
            writeContentLength(length, into: &out)
        case .none, .untilClose:
            break
        }
        // A route's header rules may name a forwarding field (WarpDrive's example adds
        // X-Forwarded-Host): then they replace the one Loom would generate, never double it.
        let replaced = request.rules.replaced
        let client = request.clientIP ?? "unknown"
        if forwarding.xForwarded {
            if !replaced.contains(.xForwardedFor) {
                out.writeStaticString("X-Forwarded-For: ")
                for value in forwardedFor {
                    out.writeString(value)
                    out.writeStaticString(", ")
                }
                out.writeString(client)
                out.writeStaticString("\r\n")
            }
            if !replaced.contains(.xForwardedProto) {
                out.writeField("X-Forwarded-Proto", forwardedProto ?? request.scheme)
            }
            if !replaced.contains(.xForwardedHost), let host = forwardedHost ?? head.host {
                out.writeField("X-Forwarded-Host", host)
            }
            if !replaced.contains(.xForwardedPort) {
                out.writeStaticString("X-Forwarded-Port: ")
                if let forwardedPort { out.writeString(forwardedPort) } else { out.writeDecimal(request.listenerPort) }
                out.writeStaticString("\r\n")
            }
        }
        if forwarding.forwarded && !replaced.contains(.forwarded) {
            forwardedRFC.append(forwardedElement(client: request.clientIP, host: head.host, proto: request.scheme))
            out.writeField("Forwarded", forwardedRFC.joined(separator: ", "))
        }
        if forwarding.via && !replaced.contains(.via) {
            writeVia(minorVersion: head.minorVersion, http2: request.http2, into: &out)
        }
        out.writeField(forwarding.requestIDHeader) { request.requestID.write(into: &$0) }
        if let identity = request.clientIdentity, let subject = identity.subject { out.writeField(identity.header, subject) }
        for header in request.rules.appended { out.writeField(header.name, header.value) }
        // The one protocol loom forwards an upgrade to, whatever else the client offered.
        if request.upgrade { out.writeStaticString("Upgrade: websocket\r\nConnection: upgrade\r\n") }
        if teTrailers { out.writeStaticString("TE: trailers\r\n") }
        out.writeStaticString("\r\n")
    }

    /// How the response body travels to the client.
    package enum ResponseFraming: Equatable {
        case none
        /// Bytes as the upstream framed them by length.
        case contentLength
        /// Re-encoded as chunks (HTTP/1.1 clients, upstream chunked or close-delimited).
        case chunked
        /// Raw bytes, ended by closing (HTTP/1.0 clients without a known length).
        case untilClose
    }

    /// The downstream framing for an upstream response to a client of `clientMinorVersion`.
    package static func responseFraming(upstream: HTTPBodyFraming, clientMinorVersion: Int) -> ResponseFraming {
        switch upstream {
        case .none: .none
        case .contentLength: .contentLength
        case .chunked, .untilClose: clientMinorVersion >= 1 ? .chunked : .untilClose
        }
    }

    /// `date` is added when the upstream sent none (RFC 9110 §6.6.1: a recipient with a clock
    /// forwarding such a response must). `rules` are the route's response header rules.
    /// A `101` is an accepted WebSocket upgrade (`UpstreamConnection` lets no other through):
    /// it keeps its `Upgrade` field and says `Connection: upgrade`.
    package static func writeResponseHead(
        _ head: HTTPResponseHead, framing: ResponseFraming, requestID: RequestID, closeConnection: Bool,
        clientMinorVersion: Int, date: String, snapshot: ProxySnapshot, rules: PreparedHeaderRules = .none, upstreamHTTP2: Bool = false,
        into out: inout ByteBuffer
    ) {
        // The head and the rules are lent, not captured: see `ByteBuffer.writeHead`.
        out.writeHead(reserving: head.headers.bytes.readableBytes + responseHeadSlack, head, rules) { head, rules, out in
            writeResponseHead(
                head, framing: framing, requestID: requestID, closeConnection: closeConnection, clientMinorVersion: clientMinorVersion,
                date: date, snapshot: snapshot, rules: rules, upstreamHTTP2: upstreamHTTP2, into: &out)
        }
    }

    private static func writeResponseHead(
        _ head: HTTPResponseHead, framing: ResponseFraming, requestID: RequestID, closeConnection: Bool,
        clientMinorVersion: Int, date: String, snapshot: ProxySnapshot, rules: PreparedHeaderRules, upstreamHTTP2: Bool,
        into out: inout HeadBytes
    ) {
        let fields = head.headers
        out.writeStaticString("HTTP/1.1 ")
        out.writeDecimal(head.status)
        out.writeStaticString(" ")
        out.writeString(head.reason)
        out.writeStaticString("\r\n")
        // A body framed by length gets one normalized Content-Length (see the request side);
        // bodiless responses (HEAD, 304) keep theirs as sent: it describes another response.
        // 1xx and 204 must not carry a length at all (RFC 9110 §8.6).
        var length: Int?
        if case .contentLength(let n) = head.framing { length = n }
        let dropLength = length != nil || head.status < 200 || head.status == 204
        let upgrade = head.status == 101
        var hasDate = false
        fields.writeFields(into: &out) { index in
            let known = fields.knownName(at: index)
            switch known {
            case .upgrade? where upgrade:
                return true
            case let known? where known.isHopByHop:
                return false
            case .contentLength? where dropLength:
                return false
            case .date?:
                hasDate = true
            default:
                break
            }
            return !fields.name(at: index, equals: snapshot.requestIDHeaderLowercased)
                && !isNamedByConnection(fields, index, head.connectionTokens) && !isNamed(fields, index, rules.dropped)
        }
        if let length { writeContentLength(length, into: &out) }
        if framing == .chunked { out.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if !hasDate { out.writeField("Date", date) }
        if snapshot.forwarding.via && !rules.replaced.contains(.via) { writeVia(minorVersion: head.minorVersion, http2: upstreamHTTP2, into: &out) }
        out.writeField(snapshot.forwarding.requestIDHeader) { requestID.write(into: &$0) }
        for header in rules.appended { out.writeField(header.name, header.value) }
        if upgrade {
            out.writeStaticString("Connection: upgrade\r\n")
        } else if closeConnection {
            out.writeStaticString("Connection: close\r\n")
        } else if clientMinorVersion == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
    }

    /// The last chunk with trailer fields the filters produced, minus the fields loom
    /// manages (framing and connection fields have no place in a trailer section).
    static func writeLastChunk(fields: [HeaderPair], into out: inout ByteBuffer) {
        out.writeHead(reserving: 5 + fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }) { out in
            out.writeStaticString("0\r\n")
            for field in fields where !HeaderPair.managedNames.contains(HeaderPair.lowered(field.name)) {
                out.writeField(field.name, field.value)
            }
            out.writeStaticString("\r\n")
        }
    }

    /// A 1xx interim response relayed to an HTTP/1.1 client.
    static func writeInformationalHead(_ head: HTTPResponseHead, into out: inout ByteBuffer) {
        out.writeHead(reserving: head.headers.bytes.readableBytes + informationalHeadSlack) { out in
            out.writeStaticString("HTTP/1.1 ")
            out.writeDecimal(head.status)
            out.writeStaticString(" ")
            out.writeString(head.reason)
            out.writeStaticString("\r\n")
            let fields = head.headers
            fields.writeFields(into: &out) { index in
                fields.knownName(at: index)?.isHopByHop != true && !isNamedByConnection(fields, index, head.connectionTokens)
            }
            out.writeStaticString("\r\n")
        }
    }

    /// `name: value` CRLF.
    static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeHead(reserving: name.utf8.count + value.utf8.count + 4) { $0.writeField(name, value) }
    }

    private static func writeContentLength(_ length: Int, into out: inout HeadBytes) {
        out.writeStaticString("Content-Length: ")
        out.writeDecimal(length)
        out.writeStaticString("\r\n")
    }

    /// Via names the protocol version this hop received (RFC 9110 §7.6.3): HTTP/2 messages
    /// reach `HeadWriter` as HTTP/1.1, so `http2` says what they came in.
    private static func writeVia(minorVersion: Int, http2: Bool, into out: inout HeadBytes) {
        out.writeStaticString(http2 ? "Via: 2 loom\r\n" : minorVersion == 0 ? "Via: 1.0 loom\r\n" : "Via: 1.1 loom\r\n")
    }

    /// Whether a `Connection` token names field `index` (it is then hop-by-hop too).
    private static func isNamedByConnection(_ fields: HTTPHeaderBlock, _ index: Int, _ tokens: [String]) -> Bool {
        isNamed(fields, index, tokens)
    }

    /// Whether field `index` has one of the lower-cased `names`.
    private static func isNamed(_ fields: HTTPHeaderBlock, _ index: Int, _ names: [String]) -> Bool {
        for name in names where fields.name(at: index, equals: name) { return true }
        return false
    }

    /// One RFC 7239 element: `for="[2001:db8::1]";host="example.com";proto=http`.
    static func forwardedElement(client: String?, host: String?, proto: String = "http") -> String {
        var element: String
        if let client {
            element = client.utf8.contains(UInt8(ascii: ":")) ? "for=\"[\(client)]\"" : "for=\(client)"
        } else {
            element = "for=unknown"
        }
        if let host {
            var quoted = ""
            JSONText.appendQuoted(host, to: &quoted)
            element += ";host=\(quoted)"
        }
        return element + ";proto=" + proto
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
