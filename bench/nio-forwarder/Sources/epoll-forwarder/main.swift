import Glibc
import CEpoll

/// The forwarder bench/run measures against `nio-forwarder` (`--nio-forwarder` runs both): the
/// same pairs of connections and the same reads and writes per request, made directly with
/// epoll on one thread instead of through SwiftNIO's channels and pipelines. The difference
/// between the two is what any handler in a SwiftNIO channel pays before doing its own work,
/// so it bounds what moving loom's I/O below `ChannelPipeline` could give. See
/// docs/BENCHMARKS.md. Linux only, like the suite.
///
/// Like `nio-forwarder`, it never stops reading because a peer is slow (that forwarder
/// ignores writability, so NIO queues without limit), and an end of input or an error closes
/// both connections at once, dropping what was still queued: a benchmark tool for keep-alive
/// traffic, not a proxy.

/// One end of a forwarded pair, by file descriptor: its peer, and the bytes its socket did not
/// take yet (from `unsentStart` on).
struct Side {
    var peer: Int32 = -1
    var unsent: [UInt8] = []
    var unsentStart = 0
}

let readSize = 64 * 1024
var sides = [Side](repeating: Side(), count: 65_536)
let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
// NIO reads into a pooled buffer sized by its adaptive allocator; one shared buffer does it here.
let readBuffer = UnsafeMutableRawPointer.allocate(byteCount: readSize, alignment: 16)

func fail(_ what: String) -> Never {
    perror(what)
    exit(1)
}

func watch(_ fd: Int32, _ events: UInt32, _ op: Int32) {
    var event = epoll_event()
    event.events = events
    event.data.fd = fd
    if epoll_ctl(epollFD, op, fd, &event) != 0 { fail("epoll_ctl") }
}

func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

func setOption(_ fd: Int32, _ level: Int32, _ name: Int32) {
    var one: Int32 = 1
    setsockopt(fd, level, name, &one, socklen_t(MemoryLayout<Int32>.size))
}

func closePair(_ fd: Int32) {
    let peer = sides[Int(fd)].peer
    for end in [fd, peer] where end >= 0 {
        close(end)
        sides[Int(end)] = Side()
    }
}

let readable = UInt32(EPOLLIN.rawValue)
let readableAndWritable = UInt32(EPOLLIN.rawValue | EPOLLOUT.rawValue)

/// Writes `count` bytes at `bytes` to `fd`. What the socket does not take (all of it while the
/// upstream connection is still being made: `write` says `EAGAIN` then) waits in `unsent`
/// until `fd` is writable.
func send(_ bytes: UnsafeRawPointer, _ count: Int, to fd: Int32) {
    var written = 0
    if sides[Int(fd)].unsent.isEmpty {
        let n = write(fd, bytes, count)
        if n < 0 && errno != EAGAIN { return closePair(fd) }
        written = max(n, 0)
        guard written < count else { return }
        watch(fd, readableAndWritable, EPOLL_CTL_MOD)
    }
    sides[Int(fd)].unsent.append(contentsOf: UnsafeRawBufferPointer(start: bytes + written, count: count - written))
}

/// Reads as NIO does: again while a read fills the buffer, at most four times.
func readFrom(_ fd: Int32) {
    for _ in 0..<4 {
        let n = read(fd, readBuffer, readSize)
        if n == 0 || (n < 0 && errno != EAGAIN) { return closePair(fd) }
        guard n > 0 else { return }
        send(readBuffer, n, to: sides[Int(fd)].peer)
        guard n == readSize, sides[Int(fd)].peer >= 0 else { return }
    }
}

/// Writes what waits for `fd`; once nothing does, stops watching for writability. A connect
/// that failed shows here (or as `EPOLLERR`) and closes the pair.
func writeTo(_ fd: Int32) {
    let start = sides[Int(fd)].unsentStart
    let waiting = sides[Int(fd)].unsent.count - start
    if waiting > 0 {
        let n = sides[Int(fd)].unsent.withUnsafeBytes { write(fd, $0.baseAddress! + start, waiting) }
        if n < 0 && errno != EAGAIN { return closePair(fd) }
        sides[Int(fd)].unsentStart += max(n, 0)
        guard n == waiting else {
            // Keep the queue from growing behind a slow reader: drop what went out.
            if sides[Int(fd)].unsentStart >= readSize {
                sides[Int(fd)].unsent.removeFirst(sides[Int(fd)].unsentStart)
                sides[Int(fd)].unsentStart = 0
            }
            return
        }
    }
    sides[Int(fd)].unsent.removeAll(keepingCapacity: true)
    sides[Int(fd)].unsentStart = 0
    watch(fd, readable, EPOLL_CTL_MOD)
}

/// Accepts up to 256 clients (loom's `maxMessagesPerRead` for its listener) and pairs each
/// with a new upstream connection, made before the client's first read as nio-forwarder does.
func accept(on listener: Int32, backendPort: Int) {
    for _ in 0..<256 {
        let client = accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
        if client < 0 { return }
        // Non-blocking, as NIO connects: a full backlog at the backend must not stall the loop.
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var backend = loopbackAddress(port: backendPort)
        let connected = withUnsafePointer(to: &backend) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard upstream >= 0, Int(max(client, upstream)) < sides.count, connected == 0 || errno == EINPROGRESS else {
            close(client)
            if upstream >= 0 { close(upstream) }
            continue
        }
        for fd in [client, upstream] { setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY) }
        sides[Int(client)].peer = upstream
        sides[Int(upstream)].peer = client
        watch(client, readable, EPOLL_CTL_ADD)
        // Writable once connected: `writeTo` then sends what the client sent meanwhile.
        watch(upstream, readableAndWritable, EPOLL_CTL_ADD)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let backendPort = Int(arguments[2]) else {
    print("usage: epoll-forwarder LISTEN_PORT BACKEND_PORT   (both on 127.0.0.1)")
    exit(2)
}
signal(SIGPIPE, SIG_IGN)
let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
setOption(listener, SOL_SOCKET, SO_REUSEADDR)
var listenAddress = loopbackAddress(port: listenPort)
let bound = withUnsafePointer(to: &listenAddress) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
if bound != 0 || listen(listener, 4096) != 0 { fail("listen on 127.0.0.1:\(listenPort)") }
watch(listener, UInt32(EPOLLIN.rawValue), EPOLL_CTL_ADD)

// 64 events per wait, as NIO's selector starts with.
var events = [epoll_event](repeating: epoll_event(), count: 64)
while true {
    let ready = epoll_wait(epollFD, &events, Int32(events.count), -1)
    if ready < 0 {
        if errno == EINTR { continue }
        fail("epoll_wait")
    }
    for event in events.prefix(Int(ready)) {
        let fd = event.data.fd
        if fd == listener {
            accept(on: listener, backendPort: backendPort)
            continue
        }
        guard sides[Int(fd)].peer >= 0 else { continue }  // closed earlier in this batch
        if event.events & UInt32(EPOLLOUT.rawValue) != 0 { writeTo(fd) }
        if event.events & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0, sides[Int(fd)].peer >= 0 { readFrom(fd) }
    }
}
