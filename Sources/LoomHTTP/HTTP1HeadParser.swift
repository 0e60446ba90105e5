import NIOCore

/// Incremental, strict HTTP/1.x head parser working directly on `ByteBuffer` bytes.
///
/// Call `parseRequestHead` (or `parseResponseHead`) each time bytes arrive, with the same
/// accumulating buffer. Complete lines are parsed once and remembered (as offsets relative to
/// the buffer's readerIndex), so a client trickling its head byte by byte costs linear, not
/// quadratic, work. Nothing is consumed until the head is complete; then exactly the head
/// bytes are consumed, leaving any pipelined bytes in the buffer.
///
/// A returned head owns a copy of its bytes rather than a slice of the caller's buffer, so
/// a request kept for as long as its exchange lasts does not keep a whole receive buffer
/// (up to 64 KiB, shared by the event loop's reads) for a head of a few hundred bytes. The
/// copy lands in storage the parser reuses once the previous head it returned is gone, as
/// does the array of field ranges: a keep-alive connection's heads allocate nothing.
///
/// The parser is RFC 9112 strict on purpose: a proxy that is more lenient than the server
/// behind it is a request-smuggling vector. Errors are thrown as soon as the bytes can never
/// become a valid head. After a head or an error the parser is reset and can be reused.
///
/// Threading: a plain value; one per connection, used on that connection's event loop.
public struct HTTP1HeadParser: Sendable {
    /// The limits applied to every head.
    public var limits: HTTP1Limits

    // Incremental state; all offsets are relative to the buffer's readerIndex.
    /// Where the head starts: 0, or 2 after a skipped leading CRLF; -1 until known.
    private var headStart = -1
    /// Start of the first line not yet parsed.
    private var lineStart = 0
    /// Where the search for the current line's CRLF resumes.
    private var scanFrom = 0
    /// Offset of the CR ending the start line; -1 while the start line is incomplete.
    private var startLineEnd = -1
    /// Field ranges of the lines parsed so far (relative to `headStart`).
    private var fields: [HTTPFieldRange] = []
    /// The storage of the last head returned, reused for the next head once that one is
    /// gone (its holder let go; a holder that keeps it simply gets fresh storage next time).
    private var keptBytes = ByteBuffer()
    private var keptFields: [HTTPFieldRange] = []
    /// Partial request-line bookkeeping for the early 414: first SP (-1 if unseen), scan resume.
    private var firstSpace = -1
    private var uriScanFrom = 0
    /// The start line, decoded as soon as it completes so garbage is rejected at the first CRLF.
    var requestLine: RequestLine?
    var statusLine: StatusLine?

    /// Field slots reserved on the first field of a head: browsers send about 10-20 fields.
    static let initialFieldCapacity = 16
    /// Heads up to this size, and with room for up to this many fields, leave their storage
    /// for the next head. An idle keep-alive connection holds it, so larger ones are not
    /// kept (nginx's client_header_buffer_size is 1 KiB for the same reason); a field range
    /// is 16 bytes, and a 1 KiB head could have 200 fields.
    static let keptHeadBytes = 1024
    static let keptFieldCapacity = 32

    /// Creates a parser applying `limits`.
    public init(limits: HTTP1Limits = HTTP1Limits()) {
        self.limits = limits
    }

    /// Forgets any partially parsed head (for example when the caller replaces its buffer).
    public mutating func reset() {
        headStart = -1
        lineStart = 0
        scanFrom = 0
        startLineEnd = -1
        // Keeps capacity after an error or a restart (the array is still uniquely ours); after a
        // head the array has been handed to the block and replaced by an empty one already.
        fields.removeAll(keepingCapacity: true)
        firstSpace = -1
        uriScanFrom = 0
        requestLine = nil
        statusLine = nil
    }

    /// Parses a request head from the readable bytes of `buffer`.
    ///
    /// On success consumes exactly the head bytes (a single skipped leading CRLF included) and
    /// returns the head; returns nil if more bytes are needed; throws when the bytes can never
    /// become a valid head, including when a limit is exceeded before the head completes.
    public mutating func parseRequestHead(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> HTTPRequestHead? {
        let parsed: (head: HTTPRequestHead, length: Int)?
        do {
            parsed = try Self.withReadable(buffer) { (raw) throws(HTTPParseError) -> (head: HTTPRequestHead, length: Int)? in
                guard let headEnd = try self.scan(raw, isRequest: true) else { return nil }
                let facts = try FieldFacts(raw, base: self.headStart, fields: self.fields)
                let line = self.requestLine.take()!
                let headers = self.keepHead(raw, headEnd: headEnd)
                let head = try Self.requestHead(raw, line: line, facts: facts, headers: headers, maxBodyBytes: self.limits.maxBodyBytes)
                return (head, headEnd)
            }
        } catch {
            reset()
            throw error
        }
        guard let parsed else { return nil }
        buffer.moveReaderIndex(forwardBy: parsed.length)
        return parsed.head
    }

    /// Parses the head of a response to a request whose method was `requestMethod` (a HEAD
    /// request's response has no body). 1xx heads are returned like any other; the caller
    /// loops until a final status. Same consumption and error contract as `parseRequestHead`.
    public mutating func parseResponseHead(_ buffer: inout ByteBuffer, requestMethod: String) throws(HTTPParseError) -> HTTPResponseHead? {
        let parsed: (head: HTTPResponseHead, length: Int)?
        do {
            parsed = try Self.withReadable(buffer) { (raw) throws(HTTPParseError) -> (head: HTTPResponseHead, length: Int)? in
                guard let headEnd = try self.scan(raw, isRequest: false) else { return nil }
                let facts = try FieldFacts(raw, base: self.headStart, fields: self.fields)
                let line = self.statusLine.take()!
                let headers = self.keepHead(raw, headEnd: headEnd)
                let head = try Self.responseHead(
                    raw, line: line, facts: facts, headers: headers, requestMethod: requestMethod, maxBodyBytes: self.limits.maxBodyBytes)
                return (head, headEnd)
            }
        } catch {
            reset()
            throw error
        }
        guard let parsed else { return nil }
        buffer.moveReaderIndex(forwardBy: parsed.length)
        return parsed.head
    }

    /// Copies the completed head, `raw[headStart..<headEnd]`, into the kept storage and wraps
    /// it with the collected ranges; the parser is then ready for the next head. Taken before
    /// the semantic pass so the head is built once, from values used for the last time: a
    /// head that fails that pass has only cost a copy into storage the next head overwrites.
    private mutating func keepHead(_ raw: UnsafeRawBufferPointer, headEnd: Int) -> HTTPHeaderBlock {
        let head = UnsafeRawBufferPointer(rebasing: raw[headStart..<headEnd])
        let reused: Void? = keptBytes.modifyIfUniquelyOwned { store in
            store.clear()
            store.writeBytes(head)
        }
        if reused == nil {
            keptBytes = ByteBufferAllocator().buffer(capacity: head.count)
            keptBytes.writeBytes(head)
        }
        let block = HTTPHeaderBlock(trusted: keptBytes, fields: fields, startLineLength: startLineEnd + 2 - headStart)
        if head.count > Self.keptHeadBytes { keptBytes = ByteBuffer() }
        keptFields = fields.capacity <= Self.keptFieldCapacity ? fields : []
        fields = []
        reset()
        return block
    }

    /// Room for a new head's field ranges: the last head's array when that head is gone
    /// (emptied in place), else a new one (`removeAll` copies nothing of a shared array).
    private mutating func startFields() {
        swap(&fields, &keptFields)
        if fields.capacity == 0 {
            fields.reserveCapacity(Self.initialFieldCapacity)
        } else {
            fields.removeAll(keepingCapacity: true)
        }
    }

    /// Room for one more field line, checked before the line is parsed: past the limit the
    /// head is refused as too many fields, whatever the line holds.
    private mutating func makeRoomForField() throws(HTTPParseError) {
        guard fields.count < limits.maxFields else { throw .tooManyFields }
        if fields.capacity == 0 { startFields() }
    }

    /// Advances over complete lines; returns the offset just past the head's final CRLF once
    /// it has arrived, nil when more bytes are needed.
    private mutating func scan(_ raw: UnsafeRawBufferPointer, isRequest: Bool) throws(HTTPParseError) -> Int? {
        // A caller that shrank or replaced the buffer: start over rather than read stale offsets.
        if headStart >= 0, scanFrom > raw.count { reset() }
        if headStart < 0 {
            guard raw.count > 0 else { return nil }
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request-line
            // (some clients send CRLF after a POST body). Exactly one is skipped.
            if isRequest, raw[0] == HTTPSyntax.cr {
                guard raw.count > 1 else { return nil }
                guard raw[1] == HTTPSyntax.lf else { throw .bareCR }
                headStart = 2
            } else {
                headStart = 0
            }
            lineStart = headStart
            scanFrom = headStart
            uriScanFrom = headStart
        }
        let maxHead = min(limits.maxHeadBytes, Int(Int32.max))
        let windowEnd = min(raw.count, headStart + maxHead)
        while true {
            // A field line not looked at yet and complete in what has arrived (nearly every
            // line) is parsed in one pass that finds its end as it goes. The start line, the
            // empty line that ends the head, a line still arriving and a malformed one take
            // the two passes below, which decide them as they always have; a line still
            // arriving resumes there, so a trickled head stays linear work.
            if startLineEnd >= 0, scanFrom == lineStart,
               let line = HTTPSyntax.scanFieldLine(raw, start: lineStart, end: windowEnd, base: headStart) {
                if line.cr + 2 - headStart > maxHead { throw .headTooLarge }
                try makeRoomForField()
                fields.append(line.range)
                lineStart = line.cr + 2
                scanFrom = lineStart
                continue
            }
            switch try HTTPSyntax.findLineEnd(raw, from: scanFrom, end: windowEnd) {
            case .needMore(let resumeAt):
                scanFrom = resumeAt
                if startLineEnd < 0, isRequest, resumeAt - lineStart > limits.maxURIBytes {
                    try checkPartialRequestLine(raw, end: resumeAt)
                }
                if raw.count >= headStart + maxHead { throw .headTooLarge }
                return nil
            case .crlf(let cr):
                if cr + 2 - headStart > maxHead { throw .headTooLarge }
                if startLineEnd < 0 {
                    startLineEnd = cr
                    if isRequest {
                        requestLine = try parseRequestLine(raw, start: lineStart, end: cr)
                    } else {
                        statusLine = try parseStatusLine(raw, start: lineStart, end: cr)
                    }
                } else if cr == lineStart {
                    return cr + 2
                } else {
                    try makeRoomForField()
                    fields.append(try HTTPSyntax.parseFieldLine(raw, start: lineStart, end: cr, base: headStart))
                }
                lineStart = cr + 2
                scanFrom = lineStart
            }
        }
    }

    /// Throws 414 as soon as an incomplete request line proves its target too long, so a client
    /// cannot make us buffer up to the head limit first. Resumes where it stopped: linear work.
    private mutating func checkPartialRequestLine(_ raw: UnsafeRawBufferPointer, end: Int) throws(HTTPParseError) {
        if firstSpace < 0 {
            var i = uriScanFrom
            while i < end, raw[i] != HTTPSyntax.sp { i += 1 }
            uriScanFrom = i
            // A "method" longer than the URI limit is no request line we would accept either.
            guard i < end else { throw .uriTooLong }
            firstSpace = i
            uriScanFrom = i + 1
        }
        var i = uriScanFrom
        while i < end, raw[i] != HTTPSyntax.sp { i += 1 }
        uriScanFrom = i
        if i - firstSpace - 1 > limits.maxURIBytes { throw .uriTooLong }
    }

    /// Runs `body` over the readable bytes, keeping the error type (NIO's accessor rethrows untyped).
    /// Static: as a method it would borrow a copy of the parser while `body` mutates it, and
    /// that copy keeps the last head's field array shared, so it could not be reused.
    @inline(__always)
    private static func withReadable<T>(
        _ buffer: ByteBuffer, _ body: (UnsafeRawBufferPointer) throws(HTTPParseError) -> T
    ) throws(HTTPParseError) -> T {
        let result: Result<T, HTTPParseError> = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(HTTPParseError) -> T in try body(raw) }
        }
        return try result.get()
    }
}

extension HTTP1HeadParser {
    /// A validated request line, as offsets into the bytes being parsed (relative to the
    /// buffer's readerIndex, like the parser's other offsets). Its strings are made once the
    /// head is complete, straight into the head: kept as strings, they were copied into it
    /// and then released, and clearing a kept line went through the runtime.
    struct RequestLine {
        /// Where the path comes from.
        enum Path {
            /// The whole target (origin-form without a query).
            case target
            /// These bytes of the target (origin-form before "?", absolute-form's path).
            case bytes(start: Int, end: Int)
            /// "/": an absolute-form target with an empty path.
            case root
            /// "*": asterisk-form.
            case asterisk
            /// "": authority-form (CONNECT).
            case empty
        }

        var methodStart: Int
        var methodEnd: Int
        var targetStart: Int
        var targetEnd: Int
        var path: Path
        var minorVersion: Int
        /// The authority of an absolute-form or authority-form target; -1 without one.
        var authorityStart = -1
        var authorityEnd = -1
    }

    /// A decoded status line.
    struct StatusLine {
        var status: Int
        /// The reason phrase's offsets (like `RequestLine`'s); empty when there is none.
        var reasonStart: Int
        var reasonEnd: Int
        var minorVersion: Int
    }
}
