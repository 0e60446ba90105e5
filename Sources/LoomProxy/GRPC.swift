import LoomHTTP

/// What loom knows of gRPC (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
/// which requests are calls, their deadline (`grpc-timeout`), and the status a gateway
/// failure becomes. gRPC itself passes through untouched: it is HTTP/2 with trailers.
///
/// Pure functions over fields and errors.
enum GRPC {
    /// A gRPC call: `content-type` is `application/grpc`, alone or with a `+format` or
    /// parameters (gRPC-Web's `application/grpc-web` is another protocol).
    static func isCall(_ head: HTTPRequestHead) -> Bool {
        head.headers.containsValue(named: "content-type") { value in
            let prefix = "application/grpc".utf8
            guard value.count >= prefix.count, zip(value, prefix).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) else { return false }
            return value.count == prefix.count || value[prefix.count] == UInt8(ascii: "+") || value[prefix.count] == UInt8(ascii: ";")
        }
    }

    /// The deadline a `grpc-timeout` value gives: 1 to 8 digits and a unit (`H`, `M`, `S`,
    /// `m`, `u`, `n`); nil for anything else, which the gRPC protocol treats as no deadline.
    static func timeout(_ value: String) -> Duration? {
        let digits = value.utf8.dropLast()
        guard (1...8).contains(digits.count), digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let amount = Int64(String(value.dropLast()))
        else { return nil }
        switch value.last {
        case "H": return .seconds(amount * 3600)
        case "M": return .seconds(amount * 60)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }

    /// gRPC status codes loom answers with (or reports to plugins for their own calls).
    enum Status: Int {
        case unknown = 2, deadlineExceeded = 4, permissionDenied = 7, resourceExhausted = 8, unimplemented = 12, `internal` = 13,
            unavailable = 14, unauthenticated = 16
    }

    /// The status a failure loom answers itself becomes: the gRPC project's HTTP-to-gRPC
    /// mapping of its HTTP status, except that loom's own timeouts (and the call's deadline)
    /// are DEADLINE_EXCEEDED, as the client's own deadline would be.
    static func status(for error: GatewayError) -> Status {
        switch error.kind {
        case .deadlineExceeded, .requestTimeout, .responseHeaderTimeout, .perTryTimeout, .idleTimeout: .deadlineExceeded
        default: status(httpStatus: error.status)
        }
    }

    /// https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md
    static func status(httpStatus: Int) -> Status {
        switch httpStatus {
        case 400: .internal
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 429, 502, 503, 504: .unavailable
        default: .unknown
        }
    }

    /// A received `grpc-message`, decoded. As the protocol asks, a `%` not followed by two
    /// hex digits is kept as it is, and bytes that are not UTF-8 become U+FFFD.
    static func percentDecoded(_ message: String) -> String {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let bytes = Array(message.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `grpc-message`'s encoding: bytes outside printable ASCII, and `%`, percent-encoded.
    static func percentEncoded(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += byte < 0x10 ? "%0" + hex : "%" + hex
            }
        }
        return out
    }
}
