import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking control-socket client (`loom ctl`, tests): sends request lines and reads
/// answer lines, each read bounded by `timeout`.
public final class ControlClient {
    private let descriptor: Int32
    private var pending: [UInt8] = []

    /// The protocol version this loom speaks (requests carry it as `version`).
    public static let protocolVersion = ControlRequest.version

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Connects to `path`.
    public init(path: String, timeout: Duration = .seconds(60)) throws(Failure) {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        if let error = Self.connect(descriptor, to: path) {
            close(descriptor)
            throw Failure(description: "cannot connect to the control socket \(path): \(String(cString: strerror(error)))")
        }
        let seconds = timeout.components.seconds
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(descriptor)
    }

    /// Connects `descriptor` to the unix socket at `path`: nil, or the `errno` of the failure.
    private static func connect(_ descriptor: Int32, to path: String) -> Int32? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return ENAMETOOLONG }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0 ? nil : errno
    }

    /// Whether something listens at `path`: nil when a connection was accepted (and closed at
    /// once), else the `errno` of the attempt (`ECONNREFUSED`: a socket file nobody serves).
    static func connectError(_ path: String) -> Int32? {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        return connect(descriptor, to: path)
    }

    /// Sends one request line (a newline is added).
    public func send(_ line: String) throws(Failure) {
        var bytes = Array((line + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeMutableBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw Failure(description: "cannot send: \(String(cString: strerror(errno)))") }
            sent += count
        }
    }

    /// The next answer line; nil when loom closed the connection.
    public func readLine() throws(Failure) -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return nil }
            guard count > 0 else {
                let timedOut = errno == EAGAIN || errno == EWOULDBLOCK
                throw Failure(description: timedOut ? "no answer from loom in time" : "cannot read: \(String(cString: strerror(errno)))")
            }
            pending += chunk[..<count]
        }
    }

    /// Sends `line` and returns the final answer (`ok` or `error`), handing a `processing`
    /// answer to `processing` first.
    public func request(_ line: String, processing: (String) -> Void = { _ in }) throws(Failure) -> String {
        try send(line)
        while let answer = try readLine() {
            let object = (try? JSONSerialization.jsonObject(with: Data(answer.utf8))) as? [String: Any]
            guard object?["status"] as? String == "processing" else { return answer }
            processing(answer)
        }
        throw Failure(description: "loom closed the connection without answering")
    }
}
