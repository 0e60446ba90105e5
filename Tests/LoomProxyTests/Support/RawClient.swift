import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client on plain POSIX sockets: sends exact bytes and reads what comes back.
///
/// Deliberately not built on Loom or NIO, so tests see the proxy's wire output exactly as a
/// client would, including bytes a well-behaved HTTP library would refuse to send.
final class RawClient {
    private var fd: Int32
    /// Bytes read past the last parsed response (pipelined responses arriving together).
    private var pending: [UInt8] = []

    init(port: Int, host: String = "127.0.0.1", timeout: Double = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawClientError.socket(errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            // Closed here, and marked so: a class whose init throws after its properties are
            // set still runs its deinit, and a second close could close another thread's
            // socket that reused the number (NIO crashed on exactly that: EBADF).
            close(fd)
            fd = -1
            throw RawClientError.connect(error)
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw RawClientError.send(errno) }
            offset += sent
        }
    }

    /// Closes the connection now: with nothing unread, the peer sees a FIN, and its later
    /// writes are answered with a reset.
    func closeNow() {
        close(fd)
        fd = -1
    }

    /// Half-closes the sending side (the server sees end of input).
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads until the peer closes or the receive timeout passes; returns what arrived and
    /// whether the connection was closed by the peer.
    func readUntilClose() -> (text: String, closed: Bool) {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else {
                return (String(decoding: data, as: UTF8.self), count == 0)
            }
        }
    }

    /// Reads one complete response (head plus a Content-Length or chunked body). Bytes after
    /// it are kept for the next call, so pipelined responses can be read one by one.
    /// `headRequest`: the response answers a HEAD request and so has no body.
    func readResponse(headRequest: Bool = false) throws -> RawResponse {
        var data = pending
        pending = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let response = RawResponse.parse(data, headRequest: headRequest) {
                pending = response.rest
                return response
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else {
                if let response = RawResponse.parse(data, atEOF: true, headRequest: headRequest) { return response }
                throw RawClientError.incomplete(String(decoding: data, as: UTF8.self))
            }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Reads just a response head (for bodies too large to collect); body bytes that came
    /// with it stay buffered for `readBody`.
    func readHead() throws -> RawResponse {
        var data = pending
        pending = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let response = RawResponse.parse(data, headRequest: true) {
                pending = response.rest
                return response
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { throw RawClientError.incomplete(String(decoding: data, as: UTF8.self)) }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Streams up to `count` raw body bytes to `visit` without keeping them; returns how many
    /// arrived before the connection ended or the receive timeout passed.
    func readBody(count: Int, visit: (ArraySlice<UInt8>) -> Void) -> Int {
        var total = min(pending.count, count)
        visit(pending[0..<total])
        pending.removeFirst(total)
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while total < count {
            let n = recv(fd, &buffer, min(buffer.count, count - total), 0)
            guard n > 0 else { break }
            visit(buffer[0..<n])
            total += n
        }
        return total
    }

    /// How reading to the end of a connection stopped.
    enum End: Equatable {
        /// The peer closed (FIN).
        case eof
        /// The peer reset the connection.
        case reset
        /// Nothing arrived within the receive timeout: the connection is still open.
        case timeout
    }

    /// Reads everything until the connection ends or the receive timeout passes; includes
    /// bytes left over from `readResponse`.
    func readToEnd() -> (bytes: [UInt8], end: End) {
        var data = pending
        pending = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
            } else if count == 0 {
                return (data, .eof)
            } else {
                return (data, errno == EAGAIN || errno == EWOULDBLOCK ? .timeout : .reset)
            }
        }
    }

    /// Whether the connection ends (FIN or reset) within the receive timeout, discarding bytes.
    func waitForClose() -> Bool {
        readToEnd().end != .timeout
    }

    /// Changes the receive timeout for later reads.
    func setReceiveTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Bounds how long a `send` may block on a peer that stopped reading (default: forever);
    /// a send that times out throws `RawClientError.send` instead of hanging the test.
    func setSendTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Makes the eventual close send a reset (RST) instead of a FIN: an abrupt client abort.
    func setResetOnClose() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    /// Reads raw bytes until `count` bytes arrived or the connection ends (first any that
    /// came behind a head `readHead` read).
    func read(count: Int) -> [UInt8] {
        var data = Array(pending.prefix(count))
        pending.removeFirst(data.count)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while data.count < count {
            let n = recv(fd, &buffer, min(buffer.count, count - data.count), 0)
            guard n > 0 else { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return data
    }
}

enum RawClientError: Error {
    case socket(Int32), connect(Int32), send(Int32), incomplete(String)
}

/// A parsed response as the client saw it. Parsing here is intentionally simple; it is
/// test code reading Loom's output, not a second HTTP implementation under test.
struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    /// Bytes after this response (pipelined responses), for the caller to parse.
    var rest: [UInt8]

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headers(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    static func parse(_ data: [UInt8], atEOF: Bool = false, headRequest: Bool = false) -> RawResponse? {
        guard let end = find([13, 10, 13, 10], in: data, from: 0) else { return nil }
        let headText = String(decoding: data[0..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = RawResponse(status: status, headers: headers, body: [], rest: [])
        let bodyStart = end + 4
        if status < 200 || status == 204 || status == 304 || headRequest {
            response.rest = Array(data[bodyStart...])
            return response
        }
        if let length = response.header("content-length").flatMap(Int.init) {
            guard data.count >= bodyStart + length else { return nil }
            response.body = Array(data[bodyStart..<(bodyStart + length)])
            response.rest = Array(data[(bodyStart + length)...])
            return response
        }
        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            var index = bodyStart
            var body = [UInt8]()
            while true {
                guard let lineEnd = find([13, 10], in: data, from: index) else { return nil }
                let sizeText = String(decoding: data[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText, radix: 16) else { return nil }
                index = lineEnd + 2
                if size == 0 {
                    // Skip trailers up to the blank line.
                    guard let trailerEnd = find([13, 10], in: data, from: index) else { return nil }
                    if trailerEnd == index {
                        response.body = body
                        response.rest = Array(data[(index + 2)...])
                        return response
                    }
                    guard let blank = find([13, 10, 13, 10], in: data, from: index) else { return nil }
                    response.body = body
                    response.rest = Array(data[(blank + 4)...])
                    return response
                }
                guard data.count >= index + size + 2 else { return nil }
                body.append(contentsOf: data[index..<(index + size)])
                index += size + 2
            }
        }
        // Close-delimited.
        guard atEOF else { return nil }
        response.body = Array(data[bodyStart...])
        return response
    }

    private static func find(_ needle: [UInt8], in data: [UInt8], from start: Int) -> Int? {
        guard data.count >= needle.count, start <= data.count - needle.count else { return nil }
        for index in start...(data.count - needle.count) where data[index] == needle[0] {
            if Array(data[index..<(index + needle.count)]) == needle { return index }
        }
        return nil
    }
}
