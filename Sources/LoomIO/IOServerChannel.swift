#if os(Linux)
import CLoomIO
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// A listening socket as a SwiftNIO `Channel`: it accepts connections and gives each to
/// `IOServerBootstrap`'s set-up on a loop of the child group. Edge-triggered like the stream
/// channels, so it accepts until EAGAIN, `maxMessagesPerRead` at a time (the rest on the same
/// turn, after the other sockets' events).
public final class IOServerChannel: Channel, ChannelCore, IOSelectable, @unchecked Sendable {
    let loop: IOEventLoop
    public var eventLoop: EventLoop { loop }
    public var parent: Channel? { nil }
    public let allocator = ByteBufferAllocator()
    public var pipeline: ChannelPipeline { _pipeline }
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var _channelCore: ChannelCore { self }
    /// Set once, between `bind` and the channel being handed out (`IOServerBootstrap`).
    public internal(set) var localAddress: SocketAddress?
    /// The local address every socket it accepts has: its own when bound to one address,
    /// nil for a wildcard (`0.0.0.0`, `::`), whose sockets each ask the kernel. Set with
    /// `localAddress`.
    internal(set) var acceptedLocalAddress: SocketAddress?
    public var remoteAddress: SocketAddress? { nil }
    public var isWritable: Bool { false }
    public var isActive: Bool { activeFlag.load(ordering: .relaxed) }
    private let activeFlag = Atomic<Bool>(true)

    let fd: Int32
    private var closed = false
    private var maxAcceptsPerRead = 4
    /// Already in the loop's list to accept again this turn.
    private var acceptAgainQueued = false
    /// Gives an accepted socket, with its peer's address, its channel and set-up
    /// (`IOServerBootstrap`).
    private let accepted: (IOServerChannel, Int32, SocketAddress?) -> Void

    init(fd: Int32, loop: IOEventLoop, accepted: @escaping (IOServerChannel, Int32, SocketAddress?) -> Void) {
        self.fd = fd
        self.loop = loop
        self.accepted = accepted
        self.closePromise = loop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    func start() throws {
        try loop.register(self, fd: fd)
        pipeline.fireChannelRegistered()
        pipeline.fireChannelActive()
    }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        loop.submit { try self.setOption0(option, value: value) }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        loop.submit {
            guard option is ChannelOptions.Types.MaxMessagesPerReadOption else { throw ChannelError.operationUnsupported }
            return UInt(self.maxAcceptsPerRead) as! Option.Value
        }
    }

    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        if let socketOption = option as? ChannelOptions.Types.SocketOption {
            try IOSocket.setOption(fd, socketOption, value: value as! ChannelOptions.Types.SocketOption.Value)
        } else if option is ChannelOptions.Types.MaxMessagesPerReadOption {
            maxAcceptsPerRead = max(1, Int(value as! UInt))
        } else {
            throw ChannelError.operationUnsupported
        }
    }

    public func localAddress0() throws -> SocketAddress { try IOSocket.localAddress(fd) }
    public func remoteAddress0() throws -> SocketAddress { throw ChannelError.operationUnsupported }
    public func register0(promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func flush0() {}
    public func read0() {}
    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: Error) {}

    public func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        guard !closed else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        closed = true
        activeFlag.store(false, ordering: .relaxed)
        loop.deregister(fd: fd)
        Glibc.close(fd)
        promise?.succeed()
        pipeline.fireChannelInactive()
        pipeline.fireChannelUnregistered()
        loop.execute { [self] in
            removeHandlers(pipeline: pipeline)
            closePromise.succeed()
        }
    }

    func closeForShutdown() {
        close0(error: ChannelError.ioOnClosedChannel, mode: .all, promise: nil)
    }

    func ready(_ events: UInt32) {
        guard !closed else { return }
        // The peer's address comes with the accept, as nginx keeps it: no `getpeername` later.
        var peer = sockaddr_storage()
        for _ in 0..<maxAcceptsPerRead {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(fd, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if client >= 0 {
                accepted(self, client, IOSocket.address(peer))
                if closed { return }
                continue
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK:
                return
            case EINTR, ECONNABORTED, EPROTO:
                continue
            default:
                // Out of descriptors or memory: the connection stays in the kernel's queue and
                // no new edge will come for it, so try again shortly, as nginx does.
                pipeline.fireErrorCaught(IOError(errnoCode: errno, reason: "accept4"))
                _ = loop.scheduleTask(in: .milliseconds(100)) { [self] in ready(EPOLLIN.rawValue) }
                return
            }
        }
        // More may be waiting: this turn still, after the other sockets (once: an edge in
        // between accepts from the same queue).
        guard !acceptAgainQueued else { return }
        acceptAgainQueued = true
        loop.callAgain(self)
    }

    func resume() {
        acceptAgainQueued = false
        ready(EPOLLIN.rawValue)
    }
}
#endif
