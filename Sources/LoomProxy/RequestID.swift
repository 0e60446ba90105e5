import LoomHTTP

/// A request's id: the client's own when it is well-formed, else one loom generated
/// (`RequestIDGenerator`): a per-loop random prefix and a counter, 32 lower-case hex digits.
///
/// A generated id stays two integers. The heads that carry it get its hex digits written
/// straight in; its `text` is made only when a log line, a filter, a plugin or an error body
/// asks. Made eagerly it was one allocation per request: 32 bytes are too long for Swift's
/// inline small strings.
package struct RequestID: Sendable, Equatable {
    private enum Value: Equatable {
        case given(String)
        case generated(prefix: UInt64, counter: UInt64)
    }

    private let value: Value

    /// The client's id, already checked by `RequestIDGenerator.isWellFormed`.
    package init(given: String) {
        value = .given(given)
    }

    package init(prefix: UInt64, counter: UInt64) {
        value = .generated(prefix: prefix, counter: counter)
    }

    package var text: String {
        switch value {
        case .given(let text):
            return text
        case .generated(let prefix, let counter):
            return String(unsafeUninitializedCapacity: 32) { buffer in
                Self.writeHex(prefix, counter, into: UnsafeMutableRawBufferPointer(buffer))
                return 32
            }
        }
    }

    /// The id as a head's field value.
    func write(into out: inout HeadBytes) {
        switch value {
        case .given(let text):
            out.writeString(text)
        case .generated(let prefix, let counter):
            withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { digits in
                Self.writeHex(prefix, counter, into: digits)
                out.writeBytes(UnsafeRawBufferPointer(digits))
            }
        }
    }

    /// 16 zero-padded lower-case hex digits each.
    private static func writeHex(_ prefix: UInt64, _ counter: UInt64, into digits: UnsafeMutableRawBufferPointer) {
        for position in 0..<32 {
            let value = position < 16 ? prefix : counter
            let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * (position % 16))) & 0xF
            digits[position] = nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "a")
        }
    }
}
