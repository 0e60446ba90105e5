import NIOCore

/// Decodes the body of one HTTP/1.x message from an accumulating `ByteBuffer`.
///
/// A pure state machine: the caller feeds the connection's read buffer, the decoder consumes
/// what it uses and returns events. Data events are slices of the caller's buffer (no copy),
/// so a body streams through the proxy without being assembled. Chunk-size lines and the
/// trailer section are only consumed once complete; a scan offset avoids rescanning them.
///
/// Strictness mirrors the head parser: malformed chunk sizes, extensions and terminators are
/// errors, never "best effort", because a lenient body decoder desynchronises the connection
/// and enables smuggling. `maxBodyBytes` is enforced against declared chunk sizes, so an
/// oversized chunk fails before its bytes arrive.
public struct HTTP1BodyDecoder: Sendable {
    /// One step of the body.
    public enum Event: Sendable {
        /// Body bytes, a slice of the caller's buffer.
        case data(ByteBuffer)
        /// The body is complete; chunked bodies may carry a trailer section.
        case end(trailers: HTTPHeaderBlock?)
    }

    /// Where the decoder is within the message.
    enum State: Sendable, Equatable {
        /// `.none` framing whose `.end` has not been returned yet.
        case noBody
        case fixedLength(remaining: Int)
        case chunkLine
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    private let limits: HTTP1Limits
    private var state: State
    /// Where the CRLF search in a pending chunk line or trailer section resumes (relative to readerIndex).
    private var scanFrom = 0
    /// Start of the next trailer line not yet parsed (relative to readerIndex).
    private var trailerLineStart = 0
    private var trailerFields: [HTTPFieldRange] = []
    /// Sum of declared chunk sizes, checked against `maxBodyBytes` before the data arrives.
    private var declaredBytes = 0
    /// Body bytes returned so far (for access logs and limits).
    public private(set) var bytesDecoded = 0

    /// Creates a decoder for a body with `framing`.
    public init(framing: HTTPBodyFraming, limits: HTTP1Limits = HTTP1Limits()) {
        self.limits = limits
        switch framing {
        case .none: state = .noBody
        case .contentLength(let n): state = .fixedLength(remaining: max(0, n))
        case .chunked: state = .chunkLine
        case .untilClose: state = .untilClose
        }
    }

    /// Whether the whole body (and its `.end` event) has been returned.
    public var isComplete: Bool { state == .done }

    /// The next event from the readable bytes of `buffer`, consuming what it uses; nil when more
    /// bytes are needed (or after `.end`). `.none` framing returns `.end` at once; `.untilClose`
    /// returns all readable bytes as data and only ends through `finishOnClose`.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .done:
                return nil
            case .noBody:
                state = .done
                return .end(trailers: nil)
            case .fixedLength(let remaining):
                if remaining == 0 {
                    state = .done
                    return .end(trailers: nil)
                }
                if let max = limits.maxBodyBytes, remaining > max - bytesDecoded { throw .bodyTooLarge }
                guard let slice = take(&buffer, upTo: remaining) else { return nil }
                state = .fixedLength(remaining: remaining - slice.readableBytes)
                return .data(slice)
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                if let max = limits.maxBodyBytes, buffer.readableBytes > max - bytesDecoded { throw .bodyTooLarge }
                return .data(take(&buffer, upTo: buffer.readableBytes)!)
            case .chunkData(let remaining):
                guard let slice = take(&buffer, upTo: remaining) else { return nil }
                let left = remaining - slice.readableBytes
                state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                return .data(slice)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 1 else { return nil }
                guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == HTTPSyntax.cr else {
                    throw .invalidChunkTerminator
                }
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) == HTTPSyntax.lf else {
                    throw .invalidChunkTerminator
                }
                buffer.moveReaderIndex(forwardBy: 2)
                state = .chunkLine
            case .chunkLine:
                guard let (lineLength, size) = try scanChunkLine(buffer) else { return nil }
                buffer.moveReaderIndex(forwardBy: lineLength + 2)
                scanFrom = 0
                if size == 0 {
                    state = .trailers
                    trailerLineStart = 0
                } else {
                    if let max = limits.maxBodyBytes, size > max - declaredBytes { throw .bodyTooLarge }
                    declaredBytes += size
                    state = .chunkData(remaining: size)
                }
            case .trailers:
                guard let sectionLength = try scanTrailers(buffer) else { return nil }
                let section = buffer.readSlice(length: sectionLength)!
                state = .done
                scanFrom = 0
                if trailerFields.isEmpty { return .end(trailers: nil) }
                let block = HTTPHeaderBlock(trusted: section, fields: trailerFields, startLineLength: 0)
                trailerFields = []
                return .end(trailers: block)
            }
        }
    }

    /// The peer closed the connection: `.untilClose` (or an already finished body) ends
    /// normally; any other unfinished framing is a truncated message.
    public mutating func finishOnClose() throws(HTTPParseError) -> Event {
        switch state {
        case .untilClose, .noBody, .done, .fixedLength(remaining: 0):
            state = .done
            return .end(trailers: nil)
        default:
            throw .prematureEnd
        }
    }

    /// Reads up to `limit` readable bytes as a slice; nil when none are readable.
    private mutating func take(_ buffer: inout ByteBuffer, upTo limit: Int) -> ByteBuffer? {
        let n = min(buffer.readableBytes, limit)
        guard n > 0 else { return nil }
        bytesDecoded += n
        return buffer.readSlice(length: n)
    }

    /// Finds and validates a complete chunk-size line at the reader index; returns its length
    /// (CRLF excluded) and the chunk size, or nil when the line is incomplete.
    private mutating func scanChunkLine(_ buffer: ByteBuffer) throws(HTTPParseError) -> (Int, Int)? {
        let maxLine = limits.maxChunkLineBytes
        let result: Result<(Int, Int)?, HTTPParseError> = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(HTTPParseError) -> (Int, Int)? in
                switch try HTTPSyntax.findLineEnd(raw, from: min(self.scanFrom, raw.count), end: min(raw.count, maxLine + 1)) {
                case .needMore(let resumeAt):
                    self.scanFrom = resumeAt
                    if resumeAt > maxLine { throw .chunkLineTooLong }
                    return nil
                case .crlf(let cr):
                    return (cr, try Self.parseChunkLine(raw, end: cr))
                }
            }
        }
        return try result.get()
    }

    /// Validates `chunk-size [chunk-ext]` in `raw[0..<end]` (RFC 9112 §7.1) and returns the size.
    /// No leading whitespace, sign or "0x"; extensions are `;name[=token|quoted-string]` with
    /// optional whitespace around ";" and "=", as the grammar's BWS allows.
    static func parseChunkLine(_ raw: UnsafeRawBufferPointer, end: Int) throws(HTTPParseError) -> Int {
        var size = 0
        var i = 0
        while i < end, let digit = hexValue(raw[i]) {
            // Overflow beyond Int is its own error: it is the classic size-truncation smuggling trick.
            guard size <= (Int.max - digit) / 16 else { throw .chunkSizeOverflow }
            size = size * 16 + digit
            i += 1
        }
        guard i > 0 else { throw .invalidChunkSize }
        let digitsEnd = i
        while i < end, HTTPSyntax.isWhitespace(raw[i]) { i += 1 }
        if i == end {
            // Whitespace is only allowed before a ";".
            guard i == digitsEnd else { throw .invalidChunkSize }
            return size
        }
        guard raw[i] == UInt8(ascii: ";") else { throw i == digitsEnd ? .invalidChunkSize : .invalidChunkExtension }
        while i < end {
            guard raw[i] == UInt8(ascii: ";") else { throw .invalidChunkExtension }
            i = skipWhitespace(raw, from: i + 1, end: end)
            let nameStart = i
            while i < end, HTTPSyntax.isToken(raw[i]) { i += 1 }
            guard i > nameStart else { throw .invalidChunkExtension }
            i = skipWhitespace(raw, from: i, end: end)
            if i < end, raw[i] == UInt8(ascii: "=") {
                i = skipWhitespace(raw, from: i + 1, end: end)
                i = try skipExtensionValue(raw, from: i, end: end)
                i = skipWhitespace(raw, from: i, end: end)
            }
        }
        return size
    }

    /// Skips a token or a quoted-string starting at `from`; returns the offset after it.
    private static func skipExtensionValue(_ raw: UnsafeRawBufferPointer, from: Int, end: Int) throws(HTTPParseError) -> Int {
        var i = from
        guard i < end else { throw .invalidChunkExtension }
        if raw[i] != UInt8(ascii: "\"") {
            while i < end, HTTPSyntax.isToken(raw[i]) { i += 1 }
            guard i > from else { throw .invalidChunkExtension }
            return i
        }
        i += 1
        while i < end {
            let b = raw[i]
            if b == UInt8(ascii: "\"") { return i + 1 }
            if b == UInt8(ascii: "\\") {
                // quoted-pair: the escaped byte must itself be HTAB, SP, VCHAR or obs-text.
                i += 1
                guard i < end, HTTPSyntax.isFieldValueChar(raw[i]) else { throw .invalidChunkExtension }
            } else if !HTTPSyntax.isFieldValueChar(b) {
                throw .invalidChunkExtension
            }
            i += 1
        }
        throw .invalidChunkExtension  // unterminated quoted-string
    }

    @inline(__always)
    private static func skipWhitespace(_ raw: UnsafeRawBufferPointer, from: Int, end: Int) -> Int {
        var i = from
        while i < end, HTTPSyntax.isWhitespace(raw[i]) { i += 1 }
        return i
    }

    @inline(__always)
    private static func hexValue(_ b: UInt8) -> Int? {
        if b &- UInt8(ascii: "0") < 10 { return Int(b &- UInt8(ascii: "0")) }
        let l = b | 0x20
        if l &- UInt8(ascii: "a") < 6 { return Int(l &- UInt8(ascii: "a")) + 10 }
        return nil
    }

    /// Scans the trailer section at the reader index line by line; returns its length (final
    /// CRLF included) once complete. Trailer fields obey the header field rules and limits, and
    /// may not carry framing or routing fields (RFC 9110 §6.5.1), which a careless recipient
    /// could merge into the header section.
    private mutating func scanTrailers(_ buffer: ByteBuffer) throws(HTTPParseError) -> Int? {
        let maxSection = min(limits.maxHeadBytes, Int(Int32.max))
        let maxFields = limits.maxFields
        let result: Result<Int?, HTTPParseError> = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(HTTPParseError) -> Int? in
                if self.scanFrom > raw.count { return nil }
                let windowEnd = min(raw.count, maxSection)
                while true {
                    switch try HTTPSyntax.findLineEnd(raw, from: self.scanFrom, end: windowEnd) {
                    case .needMore(let resumeAt):
                        self.scanFrom = resumeAt
                        if raw.count >= maxSection { throw .headTooLarge }
                        return nil
                    case .crlf(let cr):
                        if cr + 2 > maxSection { throw .headTooLarge }
                        if cr == self.trailerLineStart { return cr + 2 }
                        guard self.trailerFields.count < maxFields else { throw .tooManyFields }
                        let field = try HTTPSyntax.parseFieldLine(raw, start: self.trailerLineStart, end: cr, base: 0)
                        let nameStart = Int(field.nameStart)
                        let length = Int(field.nameLength)
                        if HTTPSyntax.equalsLowercased(raw, start: nameStart, length: length, "content-length")
                            || HTTPSyntax.equalsLowercased(raw, start: nameStart, length: length, "transfer-encoding")
                            || HTTPSyntax.equalsLowercased(raw, start: nameStart, length: length, "host") {
                            throw .invalidTrailer
                        }
                        self.trailerFields.append(field)
                        self.trailerLineStart = cr + 2
                        self.scanFrom = cr + 2
                    }
                }
            }
        }
        return try result.get()
    }
}
