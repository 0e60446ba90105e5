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

    mutating func next() -> RequestID {
        counter &+= 1
        return RequestID(prefix: prefix, counter: counter)
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
