import NIOCore

/// A message head being written straight into a `ByteBuffer`'s memory.
///
/// A forwarded head is some thirty small pieces: names, values, separators. Written with
/// `ByteBuffer`'s own methods, each piece checks capacity and uniqueness again and, inside
/// NIO, the run-time exclusivity of the storage, which together cost more than the copies
/// (docs/BENCHMARKS.md, "Heads written in one claim"). Here the room is claimed once, by
/// `ByteBuffer.writeHead(reserving:_:)`, and each piece is one bounds check and one copy.
///
/// A piece that does not fit marks the head as overflowed, and nothing more is written;
/// `writeHead` then runs the writer again with more room. So a writer must write the same
/// head on every run and change nothing outside it.
public struct HeadBytes: ~Copyable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var written = 0
    @usableFromInline var overflowed = false

    @inlinable
    init(_ room: UnsafeMutableRawBufferPointer) {
        // `writeHead` always asks for at least one byte, so there is an address.
        base = room.baseAddress!
        capacity = room.count
    }

    /// The bytes written so far.
    @inlinable
    public var count: Int { written }

    /// The next `length` bytes of the room, now counted as written; nil (and nothing more
    /// written from now on) when they do not fit.
    @inlinable @inline(__always)
    mutating func claim(_ length: Int) -> UnsafeMutableRawPointer? {
        // Compared unsigned, so a negative length can only overflow, never move backwards.
        guard !overflowed, UInt(bitPattern: length) <= UInt(bitPattern: capacity &- written) else {
            overflowed = true
            return nil
        }
        let start = base + written
        written &+= length
        return start
    }

    @inlinable
    public mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let start = claim(bytes.count), let source = bytes.baseAddress else { return }
        start.copyMemory(from: source, byteCount: bytes.count)
    }

    @inlinable
    public mutating func writeStaticString(_ string: StaticString) {
        string.withUTF8Buffer { writeBytes(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public mutating func writeString(_ string: String) {
        // A native String lends its UTF-8 where it lies. `withUTF8`, which would also make a
        // bridged one contiguous first, needs a mutable copy: a retain, a uniqueness check
        // and a release for each of the ten or so strings of every head.
        if string.utf8.withContiguousStorageIfAvailable({ writeBytes(UnsafeRawBufferPointer($0)) }) != nil { return }
        var string = string
        string.withUTF8 { writeBytes(UnsafeRawBufferPointer($0)) }
    }

    /// Two bytes (a separator such as `": "` or CRLF) with one check.
    @inlinable
    public mutating func writeBytes(_ first: UInt8, _ second: UInt8) {
        guard let start = claim(2) else { return }
        start.storeBytes(of: first, as: UInt8.self)
        (start + 1).storeBytes(of: second, as: UInt8.self)
    }

    /// `value` in decimal ASCII (status codes, lengths, ports), without a `String`.
    @inlinable
    public mutating func writeDecimal(_ value: Int) {
        precondition(value >= 0, "negative decimal")
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        guard let start = claim(digits) else { return }
        var remaining = value
        var index = digits
        repeat {
            index -= 1
            (start + index).storeBytes(of: UInt8(ascii: "0") + UInt8(truncatingIfNeeded: remaining % 10), as: UInt8.self)
            remaining /= 10
        } while index > 0
    }

    /// `name: value` CRLF.
    @inlinable
    public mutating func writeField(_ name: String, _ value: String) {
        writeField(name) { $0.writeString(value) }
    }

    /// `name: ` CRLF around a value `writeValue` writes itself (one not held as a `String`).
    @inlinable
    public mutating func writeField(_ name: String, value writeValue: (inout HeadBytes) -> Void) {
        writeString(name)
        writeBytes(UInt8(ascii: ":"), UInt8(ascii: " "))
        writeValue(&self)
        writeBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"))
    }
}

extension ByteBuffer {
    /// Writes a head with `body` straight into this buffer's memory (`HeadBytes`), in room for
    /// at least `room` bytes (more when the buffer has more to spare). A head that turns out
    /// larger is written again into twice the room, so `body` may run more than once and
    /// must write the same bytes each time. `room` is best the size the caller reserved for
    /// the buffer: asking for more than it has spare reallocates it.
    @inlinable
    public mutating func writeHead(reserving room: Int, _ body: (inout HeadBytes) -> Void) {
        writeHead(reserving: room, (), ()) { _, _, head in body(&head) }
    }

    /// `writeHead(reserving:_:)` with two values lent to `body` as its parameters. Captured by
    /// `body` instead, a struct is copied into the closure that writes (a reference count per
    /// field, measured on the request head); generic over `~Copyable`, the values can only be
    /// borrowed.
    @inlinable
    public mutating func writeHead<A: ~Copyable, B: ~Copyable>(
        reserving room: Int, _ a: borrowing A, _ b: borrowing B, _ body: (borrowing A, borrowing B, inout HeadBytes) -> Void
    ) {
        var room = Swift.max(room, 1)
        while true {
            var fitted = false
            var offered = 0
            writeWithUnsafeMutableBytes(minimumWritableBytes: room) { raw in
                offered = raw.count
                var head = HeadBytes(raw)
                body(a, b, &head)
                fitted = !head.overflowed
                return fitted ? head.count : 0
            }
            if fitted { return }
            room = 2 * Swift.max(room, offered)
        }
    }
}
