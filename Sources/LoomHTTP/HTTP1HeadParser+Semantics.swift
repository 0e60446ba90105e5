import NIOCore

/// Start-line decoding and the semantic pass over a complete head: Host, Expect, Connection,
/// and the framing decision with its anti-smuggling rules (RFC 9112 §6, RFC 9110 §7.2, §10.1.1).
extension HTTP1HeadParser {
    /// Facts gathered from the fields that matter to framing and routing, in one pass over the
    /// ranges. Names are told apart by length first, so most fields cost one integer compare.
    struct FieldFacts {
        var contentLength: Int?
        var transferEncodingSeen = false
        /// Non-empty transfer codings across all Transfer-Encoding fields.
        var codingCount = 0
        var chunkedCount = 0
        var emptyCoding = false
        var hostCount = 0
        var hostStart = 0
        var hostEnd = 0
        var expectContinue = false
        var close = false
        var keepAliveToken = false
        var connectionTokens: [String] = []

        /// Gathers the facts from `fields` (relative to `base`), throwing on malformed values.
        init(_ raw: UnsafeRawBufferPointer, base: Int, fields: [HTTPFieldRange]) throws(HTTPParseError) {
            for f in fields {
                let nameStart = base + Int(f.nameStart)
                let nameLength = Int(f.nameLength)
                let valueStart = base + Int(f.valueStart)
                let valueEnd = valueStart + Int(f.valueLength)
                switch nameLength {
                case 4 where HTTPSyntax.equalsLowercased(raw, start: nameStart, length: 4, "host"):
                    hostCount += 1
                    hostStart = valueStart
                    hostEnd = valueEnd
                case 6 where HTTPSyntax.equalsLowercased(raw, start: nameStart, length: 6, "expect"):
                    try HTTPSyntax.forEachListElement(raw, start: valueStart, end: valueEnd) { (s, e) throws(HTTPParseError) in
                        guard HTTPSyntax.equalsLowercased(raw, start: s, length: e - s, "100-continue") else {
                            throw .unsupportedExpectation
                        }
                        self.expectContinue = true
                    }
                case 10 where HTTPSyntax.equalsLowercased(raw, start: nameStart, length: 10, "connection"):
                    try HTTPSyntax.forEachListElement(raw, start: valueStart, end: valueEnd) { s, e in
                        guard s < e else { return }  // empty list elements are legal and ignored
                        if HTTPSyntax.equalsLowercased(raw, start: s, length: e - s, "close") { self.close = true }
                        if HTTPSyntax.equalsLowercased(raw, start: s, length: e - s, "keep-alive") {
                            // Not listed: the Keep-Alive field it names is hop-by-hop anyway, and
                            // the list (an allocation per message) stays empty for the usual
                            // `Connection: keep-alive`.
                            self.keepAliveToken = true
                            return
                        }
                        self.connectionTokens.append(HTTPSyntax.lowercasedString(raw, start: s, end: e))
                    }
                case 14 where HTTPSyntax.equalsLowercased(raw, start: nameStart, length: 14, "content-length"):
                    // A list of identical values ("5, 5", or repeated fields) collapses to one
                    // (RFC 9110 §8.6); any difference or malformed element is fatal.
                    try HTTPSyntax.forEachListElement(raw, start: valueStart, end: valueEnd) { (s, e) throws(HTTPParseError) in
                        guard let n = HTTPSyntax.parseDecimal(raw, start: s, end: e) else { throw .invalidContentLength }
                        if let existing = self.contentLength, existing != n { throw .conflictingContentLength }
                        self.contentLength = n
                    }
                case 17 where HTTPSyntax.equalsLowercased(raw, start: nameStart, length: 17, "transfer-encoding"):
                    transferEncodingSeen = true
                    try HTTPSyntax.forEachListElement(raw, start: valueStart, end: valueEnd) { s, e in
                        guard s < e else { self.emptyCoding = true; return }
                        self.codingCount += 1
                        if HTTPSyntax.equalsLowercased(raw, start: s, length: e - s, "chunked") { self.chunkedCount += 1 }
                    }
                default:
                    break
                }
            }
        }

        /// Whether the connection persists after the message (RFC 9112 §9.3).
        func persists(minorVersion: Int) -> Bool {
            if close { return false }
            return minorVersion >= 1 || keepAliveToken
        }
    }

    /// Decodes `method SP request-target SP HTTP-version` from `raw[start..<end]`.
    func parseRequestLine(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) throws(HTTPParseError) -> RequestLine {
        // Method: a non-empty token up to exactly one SP.
        var i = start
        while i < end, HTTPSyntax.isToken(raw[i]) { i += 1 }
        guard i < end else { throw .invalidRequestLine }
        guard raw[i] == HTTPSyntax.sp else {
            throw raw[i] < 0x20 || raw[i] == 0x7F ? .controlCharacter : .invalidMethod
        }
        guard i > start else { throw .invalidRequestLine }
        // Kept consistent with the early check on a partial line.
        guard i - start <= limits.maxURIBytes else { throw .uriTooLong }
        let methodEnd = i
        // Target: visible ASCII up to the next SP. A fragment (`#`) never belongs in a request
        // target (RFC 9112 §3.2) and `\` is not a URI character at all; backends strip the one
        // and read the other as `/`, so either would let a path match one route here and mean
        // another path there.
        let targetStart = i + 1
        i = targetStart
        while i < end, raw[i] != HTTPSyntax.sp {
            let b = raw[i]
            if b < 0x20 || b == 0x7F { throw .controlCharacter }
            if b > 0x7F || b == UInt8(ascii: "#") || b == UInt8(ascii: "\\") { throw .invalidTarget }
            i += 1
        }
        let targetEnd = i
        guard targetEnd > targetStart, targetEnd < end else { throw .invalidRequestLine }
        guard targetEnd - targetStart <= limits.maxURIBytes else { throw .uriTooLong }
        let minor = try parseVersion(raw, start: targetEnd + 1, end: end, malformed: .invalidRequestLine)

        var line = RequestLine(
            methodStart: start, methodEnd: methodEnd, targetStart: targetStart, targetEnd: targetEnd, path: .target,
            minorVersion: minor)
        let first = raw[targetStart]
        if HTTPSyntax.equals(raw, start: start, end: methodEnd, "CONNECT") {
            // authority-form only: host ":" port (RFC 9112 §3.2.3).
            guard first != UInt8(ascii: "/"), Self.isAuthorityWithPort(raw, start: targetStart, end: targetEnd) else {
                throw .invalidTarget
            }
            line.path = .empty
            line.authorityStart = targetStart
            line.authorityEnd = targetEnd
            return line
        }
        if first == UInt8(ascii: "/") {
            // origin-form; the path is everything before "?" (the target itself without a query).
            var q = targetStart
            while q < targetEnd, raw[q] != UInt8(ascii: "?") { q += 1 }
            if q < targetEnd { line.path = .bytes(start: targetStart, end: q) }
            return line
        }
        if first == UInt8(ascii: "*"), targetEnd - targetStart == 1 {
            guard HTTPSyntax.equals(raw, start: start, end: methodEnd, "OPTIONS") else { throw .invalidTarget }
            line.path = .asterisk
            return line
        }
        try parseAbsoluteForm(raw, line: &line)
        return line
    }

    /// absolute-form: scheme "://" authority [path] ["?" query]. Userinfo is rejected (RFC 9110
    /// §4.2.4 forbids it in http(s) URIs and it is a classic host-confusion trick).
    private func parseAbsoluteForm(_ raw: UnsafeRawBufferPointer, line: inout RequestLine) throws(HTTPParseError) {
        let start = line.targetStart
        let end = line.targetEnd
        var i = start
        guard HTTPSyntax.lower(raw[i]) &- UInt8(ascii: "a") < 26 else { throw .invalidTarget }
        while i < end {
            let b = raw[i]
            let isSchemeChar = HTTPSyntax.lower(b) &- UInt8(ascii: "a") < 26 || b &- UInt8(ascii: "0") < 10
                || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            guard isSchemeChar else { break }
            i += 1
        }
        guard end - i >= 3, raw[i] == HTTPSyntax.colon, raw[i + 1] == UInt8(ascii: "/"), raw[i + 2] == UInt8(ascii: "/") else {
            throw .invalidTarget
        }
        let authorityStart = i + 3
        i = authorityStart
        while i < end, raw[i] != UInt8(ascii: "/"), raw[i] != UInt8(ascii: "?") {
            guard HTTPSyntax.isHostChar(raw[i]) else { throw .invalidTarget }
            i += 1
        }
        guard i > authorityStart else { throw .invalidTarget }
        let authorityEnd = i
        while i < end, raw[i] != UInt8(ascii: "?") { i += 1 }
        line.path = i == authorityEnd ? .root : .bytes(start: authorityEnd, end: i)
        line.authorityStart = authorityStart
        line.authorityEnd = authorityEnd
    }

    /// Whether `raw[start..<end]` is host ":" port with a non-empty host and a decimal port.
    private static func isAuthorityWithPort(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) -> Bool {
        var colon = end - 1
        while colon > start, raw[colon] &- UInt8(ascii: "0") < 10 { colon -= 1 }
        guard colon > start, colon < end - 1, raw[colon] == HTTPSyntax.colon else { return false }
        for k in start..<colon where !HTTPSyntax.isHostChar(raw[k]) { return false }
        return true
    }

    /// Decodes `HTTP/1.0` or `HTTP/1.1` to the minor version. A well-formed `HTTP/x.y` (or
    /// `HTTP/x`) of another version is 505; anything else is `malformed` (400).
    func parseVersion(_ raw: UnsafeRawBufferPointer, start: Int, end: Int, malformed: HTTPParseError) throws(HTTPParseError) -> Int {
        let n = end - start
        guard n >= 6,
              raw[start] == UInt8(ascii: "H"), raw[start + 1] == UInt8(ascii: "T"), raw[start + 2] == UInt8(ascii: "T"),
              raw[start + 3] == UInt8(ascii: "P"), raw[start + 4] == UInt8(ascii: "/"),
              raw[start + 5] &- UInt8(ascii: "0") < 10
        else { throw malformed }
        if n == 6 { throw .unsupportedVersion }
        guard n == 8, raw[start + 6] == UInt8(ascii: "."), raw[start + 7] &- UInt8(ascii: "0") < 10 else { throw malformed }
        guard raw[start + 5] == UInt8(ascii: "1"), raw[start + 7] <= UInt8(ascii: "1") else { throw .unsupportedVersion }
        return Int(raw[start + 7] &- UInt8(ascii: "0"))
    }

    /// Decodes `HTTP-version SP 3DIGIT SP [reason]`; the second SP may be missing when the
    /// reason is empty (common in the wild, unambiguous).
    func parseStatusLine(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) throws(HTTPParseError) -> StatusLine {
        var versionEnd = start
        while versionEnd < end, raw[versionEnd] != HTTPSyntax.sp { versionEnd += 1 }
        let minor = try parseVersion(raw, start: start, end: versionEnd, malformed: .invalidStatusLine)
        let codeStart = versionEnd + 1
        guard end - codeStart >= 3 else { throw .invalidStatusLine }
        var status = 0
        for k in codeStart..<(codeStart + 3) {
            let digit = raw[k] &- UInt8(ascii: "0")
            guard digit < 10 else { throw .invalidStatusLine }
            status = status * 10 + Int(digit)
        }
        guard (100...599).contains(status) else { throw .invalidStatusLine }
        let afterCode = codeStart + 3
        var reasonStart = end
        if afterCode < end {
            guard raw[afterCode] == HTTPSyntax.sp else { throw .invalidStatusLine }
            for k in (afterCode + 1)..<end where !HTTPSyntax.isFieldValueChar(raw[k]) { throw .controlCharacter }
            reasonStart = afterCode + 1
        }
        return StatusLine(status: status, reasonStart: reasonStart, reasonEnd: end, minorVersion: minor)
    }

    /// The semantic pass over a complete request head, and the head built from its parts.
    /// Static, with its inputs passed in: called on the parser from inside `withReadable`'s
    /// closure, a method would run on a copy of the whole parser (retaining and releasing
    /// everything it holds). The line's strings are made here, straight into the head, and
    /// the token list moves into it.
    static func requestHead(
        _ raw: UnsafeRawBufferPointer, line: RequestLine, facts: consuming FieldFacts, headers: consuming HTTPHeaderBlock,
        maxBodyBytes: Int?
    ) throws(HTTPParseError) -> HTTPRequestHead {
        // Host: exactly one on HTTP/1.1 (RFC 9112 §3.2); never more than one; valid characters.
        if facts.hostCount > 1 { throw .duplicateHost }
        if facts.hostCount == 0, line.minorVersion >= 1 { throw .missingHost }
        var host: String?
        if facts.hostCount == 1 {
            for k in facts.hostStart..<facts.hostEnd where !HTTPSyntax.isHostChar(raw[k]) { throw .invalidHost }
            host = HTTPSyntax.string(raw, start: facts.hostStart, end: facts.hostEnd)
        }
        // An absolute-form target's authority overrides Host (RFC 9112 §3.2.2).
        if line.authorityStart >= 0 { host = HTTPSyntax.string(raw, start: line.authorityStart, end: line.authorityEnd) }

        // Framing (RFC 9112 §6.1-6.3), strictest reading: exactly one "chunked" coding, never
        // together with Content-Length, never on HTTP/1.0.
        let framing: HTTPBodyFraming
        if facts.transferEncodingSeen {
            if line.minorVersion == 0 { throw .transferEncodingInHTTP10 }
            if facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
            if facts.chunkedCount > 1 { throw .repeatedTransferCoding }
            guard facts.codingCount == 1, facts.chunkedCount == 1, !facts.emptyCoding else {
                throw .unsupportedTransferCoding
            }
            framing = .chunked
        } else if let length = facts.contentLength {
            if let max = maxBodyBytes, length > max { throw .bodyTooLarge }
            framing = .contentLength(length)
        } else {
            framing = .none
        }

        let target = HTTPSyntax.string(raw, start: line.targetStart, end: line.targetEnd)
        let path: String = switch line.path {
        case .target: target
        case .bytes(let start, let end): HTTPSyntax.string(raw, start: start, end: end)
        case .root: "/"
        case .asterisk: "*"
        case .empty: ""
        }
        return HTTPRequestHead(
            method: HTTPSyntax.methodString(raw, start: line.methodStart, end: line.methodEnd), target: target, path: path,
            minorVersion: line.minorVersion, headers: headers, host: host, framing: framing,
            keepAlive: facts.persists(minorVersion: line.minorVersion),
            expectsContinue: facts.expectContinue && line.minorVersion >= 1,
            connectionTokens: facts.connectionTokens
        )
    }

    /// The semantic pass over a complete response head, and the head built from its parts
    /// (static as `requestHead` is).
    static func responseHead(
        _ raw: UnsafeRawBufferPointer, line: StatusLine, facts: consuming FieldFacts, headers: consuming HTTPHeaderBlock, requestMethod: String,
        maxBodyBytes: Int?
    ) throws(HTTPParseError) -> HTTPResponseHead {
        // The same rules as requests, including "exactly one chunked coding": RFC 9112 would
        // allow "gzip, chunked", but a proxy that relays it must either keep the gzip coding
        // hop-by-hop (HTTP/1.0 clients cannot receive it) or undo it; like nginx, Loom treats
        // such a response as invalid rather than pass on bytes whose coding it dropped.
        if facts.transferEncodingSeen {
            if line.minorVersion == 0 { throw .transferEncodingInHTTP10 }
            if facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
            if facts.chunkedCount > 1 { throw .repeatedTransferCoding }
            guard facts.codingCount == 1, facts.chunkedCount == 1, !facts.emptyCoding else {
                throw .unsupportedTransferCoding
            }
        }
        let framing: HTTPBodyFraming
        let status = line.status
        if requestMethod == "HEAD" || status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if requestMethod == "CONNECT", status < 300 {
            // A successful CONNECT turns the connection into a tunnel: no message body follows.
            framing = .none
        } else if facts.transferEncodingSeen {
            framing = .chunked
        } else if let length = facts.contentLength {
            if let max = maxBodyBytes, length > max { throw .bodyTooLarge }
            framing = .contentLength(length)
        } else {
            framing = .untilClose
        }
        return HTTPResponseHead(
            status: status, reason: HTTPSyntax.reasonString(raw, start: line.reasonStart, end: line.reasonEnd), minorVersion: line.minorVersion, headers: headers, framing: framing,
            keepAlive: framing != .untilClose && facts.persists(minorVersion: line.minorVersion),
            connectionTokens: facts.connectionTokens
        )
    }
}
