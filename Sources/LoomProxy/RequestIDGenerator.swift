/// Produces request ids: 32 lower-case hex digits, unique per process.
///
/// A random 64-bit prefix drawn once per generator (one per event loop) followed by a
/// counter, so generating an id costs no system call and no lock. Not a secret: ids are
/// for correlation, not authentication.
struct RequestIDGenerator {
    private let prefix: UInt64
    private var counter: UInt64 = 0

    init<R: RandomNumberGenerator>(using random: inout R) {
        prefix = random.next()
    }

    init() {
        var random = SystemRandomNumberGenerator()
        self.init(using: &random)
    }

    mutating func next() -> String {
        counter &+= 1
        let (prefix, counter) = (self.prefix, self.counter)
        // Written in place: one allocation per id (32 bytes do not fit a small string).
        return String(unsafeUninitializedCapacity: 32) { buffer in
            Self.writeHex(prefix, into: buffer, at: 0)
            Self.writeHex(counter, into: buffer, at: 16)
            return 32
        }
    }

    /// 16 lower-case hex digits, zero-padded.
    private static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for position in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * position)) & 0xF
            buffer[offset + position] = nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "a")
        }
    }

    /// A client-supplied id is kept when it is 1-128 characters of `[A-Za-z0-9._:-]`:
    /// enough for UUIDs and trace ids, and nothing that could break a log line or header.
    static func isWellFormed(_ id: String) -> Bool {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }
}
