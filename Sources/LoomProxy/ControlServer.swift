import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The control socket's listener: a unix socket, mode 0600, whose connections each send
/// newline-delimited JSON requests and get answers in order (`ControlService`).
///
/// Only loom's own user and root get answers: the file mode keeps others from connecting,
/// and each connection's peer credentials (`SO_PEERCRED`) are checked as well, so a socket
/// whose mode was loosened by hand still refuses them. Like the admin API it has its own
/// thread, so it answers while the data path is busy.
public final class ControlServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let answering: NIOLockedValueBox<Int>
    public let path: String

    private init(group: MultiThreadedEventLoopGroup, channel: Channel, path: String, answering: NIOLockedValueBox<Int>) {
        self.group = group
        self.channel = channel
        self.path = path
        self.answering = answering
    }

    /// Why the socket could not be opened.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Binds `path` (replacing a stale socket file left by a loom that died, never a live
    /// socket or another kind of file) and serves requests there.
    public static func start(path: String, engine: ProxyEngine, reloader: ConfigReloader, version: String, logger: Logger) async throws -> ControlServer {
        try removeStaleSocket(at: path)
        let service = ControlService(engine: engine, reloader: reloader, version: version)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(group.next())
        let owner = geteuid()
        let answering = NIOLockedValueBox(0)
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ControlConnectionHandler(service: service, executor: executor, owner: owner, answering: answering))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
        } catch {
            try? await group.shutdownGracefully()
            throw StartError(description: "cannot listen on \(path): \(error)")
        }
        guard chmod(path, 0o600) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await channel.close()
            try? await group.shutdownGracefully()
            unlink(path)
            throw StartError(description: "cannot restrict \(path) to mode 0600: \(reason)")
        }
        logger.info("control socket listening", metadata: ["path": .string(path)])
        return ControlServer(group: group, channel: channel, path: path, answering: answering)
    }

    /// Closes the socket, lets the answers being written finish (for up to two seconds),
    /// closes every connection, and removes the socket file.
    public func stop() async {
        try? await channel.close()
        for _ in 0..<200 where answering.withLockedValue({ $0 }) > 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        try? await group.shutdownGracefully()
        unlink(path)
    }

    private static func removeStaleSocket(at path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw StartError(description: "\(path) exists and is not a socket (loom will not replace it)")
        }
        guard !ControlClientSocket.accepts(path) else {
            throw StartError(description: "\(path) is in use: another process is listening there")
        }
        unlink(path)
    }
}

/// Whether a unix socket has a listener (a connection attempt, closed at once).
enum ControlClientSocket {
    static func accepts(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }
}

/// Linux's `struct ucred` (Glibc does not export it to Swift): what `SO_PEERCRED` fills in.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// One control connection: splits lines, answers them one at a time and in order. Reading
/// pauses while a request is answered (auto-read is off), so a client that sends faster
/// than loom answers is held back by the socket, not buffered without bound.
private final class ControlConnectionHandler: ChannelDuplexHandler, @unchecked Sendable {  // used on its event loop only
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    /// A request line longer than this closes the connection with an error.
    static let maxLine = 1 << 20

    private let service: ControlService
    private let executor: EventLoopTaskExecutor
    private let owner: uid_t
    /// Answers in progress on every connection (`stop` waits for them).
    private let answering: NIOLockedValueBox<Int>
    private var buffer = ByteBuffer()
    private var lines: [String] = []
    private var busy = false
    private var authorized = false
    private var closing = false

    init(service: ControlService, executor: EventLoopTaskExecutor, owner: uid_t, answering: NIOLockedValueBox<Int>) {
        self.service = service
        self.executor = executor
        self.owner = owner
        self.answering = answering
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let credentials: EventLoopFuture<PeerCredentials>? = (context.channel as? SocketOptionProvider)?
            .unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        guard let credentials else { return refuse(context, "cannot read the peer's credentials") }
        credentials.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let peer) where peer.uid == handler.owner || peer.uid == 0:
                handler.authorized = true
                context.read()
            case .success(let peer):
                handler.refuse(context, "permission denied: uid \(peer.uid) is neither loom's user (uid \(handler.owner)) nor root")
            case .failure(let error):
                handler.refuse(context, "cannot read the peer's credentials: \(error)")
            }
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ message: String) {
        closing = true
        send(ControlService.encode(id: nil, ["status": "error", "error": message]), context: context)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard authorized, !closing else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            // A whole line that arrived in one read is held to the limit as well.
            guard length <= Self.maxLine else { return refuse(context, "request line longer than \(Self.maxLine) bytes") }
            var line = buffer.readString(length: length) ?? ""
            buffer.moveReaderIndex(forwardBy: 1)
            if line.hasSuffix("\r") { line.removeLast() }
            if !line.allSatisfy(\.isWhitespace) { lines.append(line) }
        }
        buffer.discardReadBytes()
        if buffer.readableBytes > Self.maxLine {
            return refuse(context, "request line longer than \(Self.maxLine) bytes")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        answerNext(context)
    }

    /// Answers the next queued line, or reads more when none is left.
    private func answerNext(_ context: ChannelHandlerContext) {
        guard !busy, !closing else { return }
        guard !lines.isEmpty else {
            context.read()
            return
        }
        busy = true
        let line = lines.removeFirst()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let service = self.service
        let answering = self.answering
        answering.withLockedValue { $0 += 1 }
        Task(executorPreference: executor) {
            defer { answering.withLockedValue { $0 -= 1 } }
            await service.answer(line) { answer in
                loop.execute {
                    let (handler, context) = bound.value
                    handler.send(answer, context: context)
                }
            }
            loop.execute {
                let (handler, context) = bound.value
                handler.busy = false
                handler.answerNext(context)
            }
        }
    }

    private func send(_ line: String, context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: line.utf8.count + 1)
        out.writeString(line)
        out.writeInteger(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
