import NIOCore

/// The header fields of a message head, kept as the bytes received plus per-field ranges.
///
/// This is the zero-copy alternative to a header dictionary: parsing records four offsets per
/// field and creates no `String`s; strings appear only when a caller asks for one. The proxy
/// forwards fields by copying their bytes (`writeField`), so names keep their original case.
/// Names are compared with ASCII case folding (`name(at:equals:)`), which never allocates.
///
/// Invariant: every range in `fields` lies inside `bytes` (checked by `init(bytes:fields:)`,
/// guaranteed by construction in the parser).
public struct HTTPHeaderBlock: Sendable {
    /// The whole head as received (start line, fields, final CRLF), readerIndex 0.
    /// For a trailer block: the trailer fields and the final CRLF.
    public let bytes: ByteBuffer
    /// The fields in the order received, duplicates included.
    public private(set) var fields: [HTTPFieldRange]
    /// Length of the start line including its CRLF (0 for trailer blocks): where fields begin.
    public let startLineLength: Int

    /// Creates a block from bytes and ranges; traps if a range lies outside `bytes`.
    public init(bytes: ByteBuffer, fields: [HTTPFieldRange], startLineLength: Int = 0) {
        var bytes = bytes
        // Normalise to readerIndex 0 so ranges are plain offsets into the readable bytes.
        if bytes.readerIndex != 0 { bytes = bytes.slice() }
        for f in fields {
            precondition(f.nameStart >= 0 && f.nameLength >= 0 && f.valueStart >= 0 && f.valueLength >= 0)
            precondition(f.nameEnd <= bytes.readableBytes && f.valueEnd <= bytes.readableBytes)
        }
        precondition(startLineLength >= 0 && startLineLength <= bytes.readableBytes)
        self.bytes = bytes
        self.fields = fields
        self.startLineLength = startLineLength
    }

    /// Parser-internal initialiser: the parser guarantees the range invariant.
    init(trusted bytes: ByteBuffer, fields: [HTTPFieldRange], startLineLength: Int) {
        self.bytes = bytes
        self.fields = fields
        self.startLineLength = startLineLength
    }

    /// Number of fields (duplicates counted).
    @inlinable
    public var count: Int { fields.count }

    /// Drops every field named one of the lower-cased `names` (the bytes stay; only the
    /// index forgets them).
    public mutating func removeAll(named names: [String]) {
        let kept = fields.indices.filter { index in !names.contains { name(at: index, equals: $0) } }
        if kept.count != fields.count { fields = kept.map { fields[$0] } }
    }

    /// The name of field `index` as received (original case).
    public func name(at index: Int) -> String {
        let f = fields[index]
        return string(Int(f.nameStart), Int(f.nameLength))
    }

    /// The value of field `index`, trimmed of OWS; obs-text bytes are decoded as UTF-8 with repair.
    public func value(at index: Int) -> String {
        let f = fields[index]
        return string(Int(f.valueStart), Int(f.valueLength))
    }

    /// Case-insensitive ASCII name comparison without allocating; `lowercasedName` must be lower-case.
    public func name(at index: Int, equals lowercasedName: String) -> Bool {
        let f = fields[index]
        guard lowercasedName.utf8.count == Int(f.nameLength) else { return false }
        var name = lowercasedName
        // A native String always has contiguous UTF-8; the fallback keeps bridged ones correct.
        return name.withUTF8 { wanted in
            return bytes.withUnsafeReadableBytes { raw in
                HTTPSyntax.equalsLowercased(raw, start: Int(f.nameStart), wanted: UnsafeRawBufferPointer(wanted))
            }
        }
    }

    /// The value of the first field named `lowercasedName`, or nil.
    public func firstValue(named lowercasedName: String) -> String? {
        guard let index = firstIndex(named: lowercasedName) else { return nil }
        return value(at: index)
    }

    /// How many fields are named `lowercasedName` (which must be lower-case).
    public func count(named lowercasedName: String) -> Int {
        (0..<fields.count).reduce(0) { $0 + (name(at: $1, equals: lowercasedName) ? 1 : 0) }
    }

    /// Whether any field is named `lowercasedName` (which must be lower-case).
    public func contains(_ lowercasedName: String) -> Bool {
        firstIndex(named: lowercasedName) != nil
    }

    /// Calls `body` with the value bytes (trimmed) of each field named `lowercasedName`, in
    /// order, until it returns true; returns whether it did. Allocates nothing.
    public func containsValue(named lowercasedName: String, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var name = lowercasedName
        return name.withUTF8 { wanted in
            bytes.withUnsafeReadableBytes { raw in
                let wanted = UnsafeRawBufferPointer(wanted)
                for f in fields where Int(f.nameLength) == wanted.count {
                    guard HTTPSyntax.equalsLowercased(raw, start: Int(f.nameStart), wanted: wanted) else { continue }
                    if body(UnsafeRawBufferPointer(rebasing: raw[Int(f.valueStart)..<Int(f.valueStart + f.valueLength)])) { return true }
                }
                return false
            }
        }
    }

    /// The index of the first field named `lowercasedName`, or nil.
    public func firstIndex(named lowercasedName: String) -> Int? {
        var name = lowercasedName
        return name.withUTF8 { wanted in
            bytes.withUnsafeReadableBytes { raw in
                let wanted = UnsafeRawBufferPointer(wanted)
                for (i, f) in fields.enumerated() where Int(f.nameLength) == wanted.count {
                    if HTTPSyntax.equalsLowercased(raw, start: Int(f.nameStart), wanted: wanted) { return i }
                }
                return nil
            }
        }
    }

    /// Appends "Name: value\r\n" for field `index` to `out`: the name exactly as received
    /// (original case), one space, the trimmed value. Whitespace around the value is normalised
    /// because the received OWS carries no meaning and is not recorded.
    public func writeField(at index: Int, into out: inout HeadBytes) {
        let f = fields[index]
        bytes.withUnsafeReadableBytes { raw in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[Int(f.nameStart)..<f.nameEnd]))
            out.writeBytes(UInt8(ascii: ":"), HTTPSyntax.sp)
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[Int(f.valueStart)..<f.valueEnd]))
            out.writeBytes(HTTPSyntax.cr, HTTPSyntax.lf)
        }
    }

    /// Appends the fields `keep` accepts, in order, each as `writeField` would. Consecutive
    /// lines already in that form (`Name: value` CRLF, one space, no trailing whitespace)
    /// are copied as one piece: a typical head is one or two copies instead of four writes
    /// per field. `keep` is called once per field, in order, on each run of the head's
    /// writer (`ByteBuffer.writeHead` runs it again when the head outgrows its room).
    public func writeFields(into out: inout HeadBytes, where keep: (Int) -> Bool) {
        bytes.withUnsafeReadableBytes { raw in
            // The pending run of verbatim lines, as a byte range of `raw`.
            var runStart = 0
            var runEnd = 0
            for index in fields.indices where keep(index) {
                let f = fields[index]
                let lineStart = Int(f.nameStart)
                let lineEnd = f.valueEnd + 2
                // Checked byte by byte, not assumed from the parser: a block built by hand
                // through `init(bytes:fields:)` may lay its bytes out any way.
                let canonical = Int(f.valueStart) == f.nameEnd + 2 && raw[f.nameEnd] == UInt8(ascii: ":")
                    && raw[f.nameEnd + 1] == HTTPSyntax.sp && lineEnd <= raw.count
                    && raw[f.valueEnd] == HTTPSyntax.cr && raw[f.valueEnd + 1] == HTTPSyntax.lf
                if canonical && runEnd > runStart && runEnd == lineStart {
                    runEnd = lineEnd
                    continue
                }
                if runEnd > runStart { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[runStart..<runEnd])) }
                if canonical {
                    (runStart, runEnd) = (lineStart, lineEnd)
                } else {
                    (runStart, runEnd) = (0, 0)
                    writeField(at: index, into: &out)
                }
            }
            if runEnd > runStart { out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[runStart..<runEnd])) }
        }
    }

    /// Decodes `length` bytes at `start` of `bytes`.
    private func string(_ start: Int, _ length: Int) -> String {
        bytes.withUnsafeReadableBytes { raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]), as: UTF8.self)
        }
    }
}
