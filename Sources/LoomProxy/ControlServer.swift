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
    /// The socket file's identity, so `stop` never removes a file that replaced it.
    private let identity: FileIdentity?
    public let path: String

    private init(group: MultiThreadedEventLoopGroup, channel: Channel, path: String, answering: NIOLockedValueBox<Int>) {
        self.group = group
        self.channel = channel
        self.path = path
        self.answering = answering
        identity = FileIdentity(path)
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
            // A client that sends its requests and shuts down its side (`socat`, `nc -N`)
            // still gets every answer; the connection closes once they are written.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
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
        if let identity, FileIdentity(path) == identity { unlink(path) }
    }

    private static func removeStaleSocket(at path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw StartError(description: "\(path) exists and is not a socket (loom will not replace it)")
        }
        // Only a refused connection proves nobody listens; any other failure (such as another
        // user's socket we may not connect to) leaves the file alone.
        switch ControlClient.connectError(path) {
        case ECONNREFUSED?: unlink(path)
        case nil: throw StartError(description: "\(path) is in use: another process is listening there")
        case let error?: throw StartError(description: "\(path) exists and cannot be checked (\(String(cString: strerror(error)))): remove it if no loom uses it")
        }
    }
}

/// A file's device and inode.
struct FileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64

    init?(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
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
    /// Requests read but not answered yet: at most one read's worth (the next read waits
    /// until they are answered), or what a half-closed client left in the socket buffer.
    private var lines: [String] = []
    private var busy = false
    private var authorized = false
    private var closing = false
    /// The client shut down its side: answer what was sent, then close.
    private var inputClosed = false
    private var lastWrite: EventLoopFuture<Void>?

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
        send(ControlService.encode(id: nil, ["status": "error", "error": message]), context: context)
        closeAfterWrites(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard authorized, !closing else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            // A whole line that arrived in one read is held to the limit as well.
            guard length <= Self.maxLine else { return refuse(context, "request line longer than \(Self.maxLine) bytes") }
            let bytes = buffer.readBytes(length: length) ?? []
            buffer.moveReaderIndex(forwardBy: 1)
            guard var line = String(validating: bytes, as: UTF8.self) else { return refuse(context, "a request line is not valid UTF-8") }
            if line.hasSuffix("\r") { line.removeLast() }
            if line.allSatisfy(\.isWhitespace) { continue }
            lines.append(line)
        }
        buffer.discardReadBytes()
        if buffer.readableBytes > Self.maxLine {
            return refuse(context, "request line longer than \(Self.maxLine) bytes")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        answerNext(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            answerNext(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        answerNext(context)
        context.fireChannelWritabilityChanged()
    }

    /// Answers the next queued line; with none left, reads more (or, once the client has
    /// shut down its side, closes). Nothing happens while the client does not read what was
    /// written, so answers never pile up in memory.
    private func answerNext(_ context: ChannelHandlerContext) {
        guard !busy, !closing, context.channel.isWritable else { return }
        guard !lines.isEmpty else {
            if inputClosed {
                closeAfterWrites(context)
            } else {
                context.read()
            }
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
        lastWrite = context.writeAndFlush(wrapOutboundOut(out))
    }

    /// Closes the connection once everything written so far has gone out.
    private func closeAfterWrites(_ context: ChannelHandlerContext) {
        closing = true
        guard let lastWrite else { return context.close(promise: nil) }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        lastWrite.whenComplete { _ in bound.value.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
