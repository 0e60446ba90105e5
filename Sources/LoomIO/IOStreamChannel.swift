#if os(Linux)
import CLoomIO
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// A TCP or unix stream socket as a SwiftNIO `Channel`, on an `IOEventLoop`. Handlers see what
/// NIO's own socket channels give them: `channelActive`, one `channelRead` per read, a
/// `channelReadComplete` after each batch, `ChannelEvent.inputClosed` for a peer's FIN when
/// half-closure is allowed, writability crossing the watermarks, `channelInactive` and
/// `channelUnregistered` at the end, and `IOError`s for failed system calls.
///
/// What is cheaper than NIO's `BaseSocketChannel`: the socket is registered once, edge-
/// triggered, for input and output (no registration change per request); a read of less
/// than the buffer ends the batch without a read that would only say EAGAIN; a flush writes
/// at once (`write`, `writev` for several buffers, `sendfile` for a file region); state is
/// plain fields touched on the loop only, with atomics just for what other threads may ask
/// (`isActive`, `isWritable`).
public final class IOStreamChannel: Channel, ChannelCore, IOSelectable, @unchecked Sendable {
    enum State {
        case fresh
        case connecting(EventLoopPromise<Void>?)
        case active
        case closed
    }

    let loop: IOEventLoop
    public var eventLoop: EventLoop { loop }
    public let parent: Channel?
    public let allocator = ByteBufferAllocator()
    public var pipeline: ChannelPipeline { _pipeline }
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var _channelCore: ChannelCore { self }

    private let activeFlag = Atomic<Bool>(false)
    private let writableFlag = Atomic<Bool>(true)
    private let addresses = NIOLockedValueBox<(local: SocketAddress?, remote: SocketAddress?)>((nil, nil))

    // On the loop only.
    private let fd: Int32
    private var state = State.fresh
    private var registered = false
    private var options: IOStreamOptions
    /// A `read()` was asked for (by autoRead or a handler) and no bytes were delivered since.
    private var readPending = false
    /// An edge said there is input (or an end, or an error) not read yet.
    private var readable = false
    /// An edge said the peer sent its FIN (or the connection failed): a short read does not
    /// mean drained, since the end is still to be read, and no new edge will announce it.
    private var endPending = false
    /// Set while handlers run inside a read batch: a `read()` then needs no separate turn.
    private var reading = false
    /// Already in the loop's list to read again this turn.
    private var readAgainQueued = false
    private var inputClosed = false
    private var outputClosed = false
    /// `close(mode: .output)` was asked with writes still queued: its promise, until they are out.
    private var outputClosing: EventLoopPromise<Void>?
    private var writes = IOWriteQueue()
    /// The socket took less than it was given: the rest goes when EPOLLOUT says there is room.
    private var waitingForRoom = false
    /// `writeFlushed` is running (a promise's callback may flush again).
    private var flushing = false
    private var connectTimer: Scheduled<Void>?
    /// The pipeline's only handler, taking reads straight from the socket (`IODirectInbound`).
    private var directInbound: IODirectInbound?

    init(fd: Int32, loop: IOEventLoop, parent: Channel?, options: IOStreamOptions = IOStreamOptions()) {
        self.fd = fd
        self.options = options
        self.loop = loop
        self.parent = parent
        self.closePromise = loop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    public var isActive: Bool { activeFlag.load(ordering: .relaxed) }
    public var isWritable: Bool { writableFlag.load(ordering: .relaxed) }
    public var localAddress: SocketAddress? { addresses.withLockedValue { $0.local } }
    public var remoteAddress: SocketAddress? { addresses.withLockedValue { $0.remote } }

    // MARK: Options

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if loop.inEventLoop {
            do {
                try setOption0(option, value: value)
                return loop.makeSucceededVoidFuture()
            } catch {
                return loop.makeFailedFuture(error)
            }
        }
        return loop.submit { try self.setOption0(option, value: value) }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if loop.inEventLoop {
            do { return loop.makeSucceededFuture(try getOption0(option)) } catch { return loop.makeFailedFuture(error) }
        }
        return loop.submit { try self.getOption0(option) }
    }

    public var syncOptions: NIOSynchronousChannelOptions? { SynchronousOptions(channel: self) }

    private struct SynchronousOptions: NIOSynchronousChannelOptions {
        let channel: IOStreamChannel

        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            channel.loop.preconditionInEventLoop()
            try channel.setOption0(option, value: value)
        }

        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            channel.loop.preconditionInEventLoop()
            return try channel.getOption0(option)
        }
    }

    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        if let socketOption = option as? ChannelOptions.Types.SocketOption {
            if case .closed = state { throw ChannelError.ioOnClosedChannel }
            return try IOSocket.setOption(fd, socketOption, value: value as! ChannelOptions.Types.SocketOption.Value)
        }
        try options.set(option, value: value)
        if option is ChannelOptions.Types.AutoReadOption, options.autoRead, isActive { read0() }
    }

    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        if let socketOption = option as? ChannelOptions.Types.SocketOption {
            return try IOSocket.option(fd, socketOption) as! Option.Value
        }
        return try options.get(option)
    }

    // MARK: ChannelCore

    public func localAddress0() throws -> SocketAddress { try IOSocket.localAddress(fd) }
    public func remoteAddress0() throws -> SocketAddress { try IOSocket.remoteAddress(fd) }

    public func register0(promise: EventLoopPromise<Void>?) {
        if case .closed = state {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        do {
            try registerWithLoop()
        } catch {
            promise?.fail(error)
            close0(error: error, mode: .all, promise: nil)
            return
        }
        promise?.succeed()
        pipeline.fireChannelRegistered()
    }

    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) {
        register0(promise: promise)
    }

    private func registerWithLoop() throws {
        guard !registered else { return }
        try loop.register(self, fd: fd)
        registered = true
    }

    public func bind0(to address: SocketAddress, promise: EventLoopPromise<Void>?) {
        do {
            try IOSocket.bind(fd, to: address)
            promise?.succeed()
        } catch {
            promise?.fail(error)
        }
    }

    public func connect0(to address: SocketAddress, promise: EventLoopPromise<Void>?) {
        guard case .fresh = state else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        do {
            try registerWithLoop()
            if try IOSocket.connect(fd, to: address) {
                becomeActive(connected: promise)
                readIfNeeded()
            } else {
                state = .connecting(promise)
                if let timeout = options.connectTimeout {
                    connectTimer = loop.scheduleTask(in: timeout) { [self] in
                        guard case .connecting = state else { return }
                        close0(error: ChannelError.connectTimeout(timeout), mode: .all, promise: nil)
                    }
                }
            }
        } catch {
            promise?.fail(error)
            close0(error: error, mode: .all, promise: nil)
        }
    }

    /// An accepted socket, or a connect that ended well: handlers learn it is up, after
    /// the connect's promise is kept (NIO's order). An address already known (an accepted
    /// socket's, from `accept4` and its listener) is not asked of the kernel again.
    func becomeActive(connected promise: EventLoopPromise<Void>? = nil, local: SocketAddress? = nil, remote: SocketAddress? = nil) {
        state = .active
        activeFlag.store(true, ordering: .relaxed)
        let local = local ?? (try? IOSocket.localAddress(fd))
        let remote = remote ?? (try? IOSocket.remoteAddress(fd))
        addresses.withLockedValue { $0 = (local, remote) }
        promise?.succeed()
        pipeline.fireChannelActive()
    }

    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        enqueue(IODataUnwrapper.unwrapOutboundIn(data), promise: promise)
    }

    /// A write from the pipeline's first outbound handler, as `write0` without the `NIOAny`:
    /// for a handler that knows nothing sits between it and the socket (LoomProxy's
    /// `ChannelOutlet`), the pipeline's trip would end here anyway.
    package func writeDirectly(_ buffer: ByteBuffer) {
        enqueue(.byteBuffer(buffer), promise: nil)
    }

    /// Reads, their batches' ends and auto-read's requests for more go to `handler` instead
    /// of through the pipeline (nil: through it again), for a handler that is the pipeline's
    /// only one (LoomProxy's `ChannelOutlet` decides). On the loop only. Held strongly until
    /// the channel closes or the handler lets go.
    package func takeInboundDirectly(_ handler: IODirectInbound?) {
        directInbound = handler
    }

    private func enqueue(_ data: IOData, promise: EventLoopPromise<Void>?) {
        guard case .active = state else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard !outputClosed, outputClosing == nil else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        writes.append(data, promise: promise)
        if writes.bytes > options.writeBufferWaterMark.high, isWritable {
            writableFlag.store(false, ordering: .relaxed)
            pipeline.fireChannelWritabilityChanged()
        }
    }

    public func flush0() {
        guard case .active = state else { return }
        writes.markFlushed()
        if !waitingForRoom { writeFlushed() }
    }

    public func read0() {
        guard case .active = state, !inputClosed else { return }
        readPending = true
        // Bytes an edge announced are still there: read them this turn, after the events, so
        // this call (often from a handler inside a read) does not re-enter the read.
        if readable, !reading { readAgain() }
    }

    private func readAgain() {
        guard !readAgainQueued else { return }
        readAgainQueued = true
        loop.callAgain(self)
    }

    public func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .all:
            closeAll(error: error, promise: promise)
        case .output:
            guard case .active = state, !outputClosed, outputClosing == nil else {
                promise?.fail(ChannelError.outputClosed)
                return
            }
            // Both halves shut make a closed connection, as on NIO's channels.
            if inputClosed { return closeAll(error: error, promise: promise) }
            // What was written goes out first: the shutdown waits for the queue to drain.
            outputClosing = promise ?? loop.makePromise()
            if writes.isEmpty { shutdownOutput() }
        case .input:
            guard case .active = state, !inputClosed else {
                promise?.fail(ChannelError.inputClosed)
                return
            }
            if outputClosed { return closeAll(error: error, promise: promise) }
            inputClosed = true
            readable = false
            readPending = false
            // After the peer's FIN there is nothing to shut (the call would say ENOTCONN).
            if (error as? ChannelError) != .eof { shutdown(fd, Int32(SHUT_RD)) }
            promise?.succeed()
            pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    /// The queue drained after `close(mode: .output)`: the FIN goes now.
    private func shutdownOutput() {
        guard let closing = outputClosing else { return }
        outputClosing = nil
        // The peer's FIN came while the queue drained: both halves shut make a closed channel.
        if inputClosed { return closeAll(error: ChannelError.outputClosed, promise: closing) }
        outputClosed = true
        shutdown(fd, Int32(SHUT_WR))
        closing.succeed()
        pipeline.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
    }

    private func closeAll(error: Error, promise: EventLoopPromise<Void>?) {
        let wasActive: Bool
        switch state {
        case .closed:
            promise?.fail(ChannelError.alreadyClosed)
            return
        case .connecting(let connectPromise):
            connectPromise?.fail(error)
            wasActive = false
        case .fresh:
            wasActive = false
        case .active:
            wasActive = true
        }
        state = .closed
        activeFlag.store(false, ordering: .relaxed)
        writableFlag.store(false, ordering: .relaxed)
        connectTimer?.cancel()
        connectTimer = nil
        readPending = false
        readable = false
        if registered { loop.deregister(fd: fd) }
        Glibc.close(fd)
        let failed = writes.removeAll()
        for pending in failed { pending.fail(error) }
        outputClosing?.fail(error)
        outputClosing = nil
        promise?.succeed()
        directInbound = nil
        if wasActive { pipeline.fireChannelInactive() }
        if registered { pipeline.fireChannelUnregistered() }
        // As NIO does: the handlers go, and the close future completes, on a later turn, so
        // what the events above started (a handler closing its peer) runs first.
        loop.execute { [self] in
            removeHandlers(pipeline: pipeline)
            closePromise.succeed()
        }
    }

    func closeForShutdown() {
        close0(error: ChannelError.ioOnClosedChannel, mode: .all, promise: nil)
    }

    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: Error) {}

    // MARK: Events

    func resume() {
        readAgainQueued = false
        // An edge handled since it asked may have read the socket dry: then there is
        // nothing to read until the next edge, and no `recv` is made to hear EAGAIN.
        guard case .active = state, !inputClosed, readable, readPending || endPending else { return }
        readBatch()
    }

    func ready(_ events: UInt32) {
        if case .connecting = state {
            // The same edge may also bring the peer's first bytes or its FIN: go on with them.
            finishConnect()
        }
        guard case .active = state else { return }
        let failed = events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
        if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 || failed, !inputClosed {
            readable = true
            if events & EPOLLRDHUP.rawValue != 0 || failed { endPending = true }
            // The peer's FIN is read even while reads are paused, data first, as NIO does:
            // edge-triggered, nothing would announce it again.
            if readPending || endPending { readBatch() }
        }
        // A reset or an error while nothing reads (reads paused, or the input already closed)
        // closes now, as on NIO's channels: no later edge would tell.
        if failed, case .active = state, !readPending || inputClosed {
            let error = IOSocket.connectResult(fd) ?? IOError(errnoCode: ECONNRESET, reason: "read")
            close0(error: error, mode: .all, promise: nil)
            return
        }
        if events & (EPOLLOUT.rawValue | EPOLLERR.rawValue) != 0, waitingForRoom, case .active = state {
            waitingForRoom = false
            writeFlushed()
        }
    }

    private func finishConnect() {
        guard case .connecting(let promise) = state else { return }
        if let error = IOSocket.connectResult(fd) {
            close0(error: error, mode: .all, promise: nil)
            return
        }
        connectTimer?.cancel()
        connectTimer = nil
        becomeActive(connected: promise)
        readIfNeeded()
    }

    /// An accepted socket, registered: it is up, and reading starts if autoRead says so.
    /// `local` and `remote` are its addresses when already known (`IOServerBootstrap`).
    func activateAccepted(local: SocketAddress?, remote: SocketAddress?) {
        guard case .fresh = state else { return }
        becomeActive(local: local, remote: remote)
        readIfNeeded()
    }

    private func readIfNeeded() {
        guard options.autoRead, !readPending, case .active = state else { return }
        if let directInbound { directInbound.socketWantsRead() } else { pipeline.read() }
    }

    /// Reads while the socket fills whole buffers, up to `maxMessagesPerRead`; a short read
    /// means the socket is drained (a new edge comes with new bytes), so no read is made
    /// just to hear EAGAIN.
    private func readBatch() {
        reading = true
        var delivered = false
        var ending: Error?
        for _ in 0..<options.maxMessagesPerRead {
            guard case .active = state, !inputClosed else { break }
            // The read's result: a byte count, 0 for the peer's FIN, or -errno.
            let size = options.nextReadSize()
            let (buffer, result) = loop.receiveBuffers.withBuffer(size: size, allocator: allocator) { buffer in
                var result = 0
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { pointer in
                    // No more than asked: a shared buffer may be larger than this channel's size.
                    let count = Glibc.recv(fd, pointer.baseAddress, min(pointer.count, size), 0)
                    result = count < 0 ? -Int(errno) : count
                    return max(count, 0)
                }
                return result
            }
            let count = buffer.readableBytes
            if count > 0 {
                options.record(readBytes: count)
                readPending = false
                delivered = true
                let full = count >= size
                if let directInbound { directInbound.socketRead(buffer) } else { pipeline.fireChannelRead(buffer) }
                if !full {
                    readable = endPending
                    break
                }
                continue
            }
            if result == 0 {
                ending = ChannelError.eof
            } else if -result == EAGAIN || -result == EWOULDBLOCK {
                readable = false
            } else if -result == EINTR {
                continue
            } else {
                ending = IOError(errnoCode: Int32(-result), reason: "read")
            }
            break
        }
        reading = false
        // NIO's order: the batch's end, then the next read if autoRead asks; an end of input
        // gets its read-complete too.
        if delivered || ending is ChannelError {
            if ending == nil { readIfNeeded() }
            if let directInbound { directInbound.socketReadComplete() } else { pipeline.fireChannelReadComplete() }
        }
        if let ending {
            readable = false
            endInput(ending)
        } else if readable, readPending, case .active = state {
            readAgain()
        }
    }

    /// The peer's FIN (`ChannelError.eof`) or a read error.
    private func endInput(_ error: Error) {
        guard case .active = state else { return }
        if let channelError = error as? ChannelError, channelError == .eof {
            if options.allowRemoteHalfClosure {
                close0(error: error, mode: .input, promise: nil)
            } else {
                close0(error: error, mode: .all, promise: nil)
            }
            return
        }
        pipeline.fireErrorCaught(error)
        close0(error: error, mode: .all, promise: nil)
    }

    /// Writes the flushed data until it is all out or the socket is full. Written writes'
    /// promises are kept in order, then writability is updated (NIO's order). A promise's
    /// callback that writes and flushes again only adds to the queue this loop drains; a
    /// writability handler that does runs a new pass (the guard is down by then).
    private func writeFlushed() {
        guard !flushing else { return }
        flushing = true
        var failure: IOError?
        repeat {
            var done: [EventLoopPromise<Void>] = []
            while writes.hasFlushed {
                let (written, offered) = writeFront()
                if written < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == EAGAIN || code == EWOULDBLOCK {
                        waitingForRoom = true
                    } else {
                        failure = IOError(errnoCode: code, reason: "write")
                    }
                    break
                }
                writes.consume(written, done: &done)
                // Less taken than offered: the socket is full; EPOLLOUT will say when it is not.
                if written < offered {
                    waitingForRoom = true
                    break
                }
            }
            for promise in done { promise.succeed() }
        } while failure == nil && !waitingForRoom && writes.hasFlushed && isActive
        flushing = false
        guard case .active = state else { return }
        if let failure {
            // Queued writes fail with this error; as on NIO's channels, no errorCaught for it.
            return close0(error: failure, mode: .all, promise: nil)
        }
        updateWritability()
        if writes.isEmpty, outputClosing != nil { shutdownOutput() }
    }

    /// Offers the socket the front of the flushed data: a file region by `sendfile`, one
    /// buffer by `write`, several by `writev`. What it took (or -1) and what it was offered;
    /// empty buffers cost no system call.
    private func writeFront() -> (written: Int, offered: Int) {
        if case .fileRegion(let region) = writes.first {
            let offered = region.readableBytes
            guard offered > 0 else { return (0, 0) }
            do {
                let written = try region.fileHandle.withUnsafeFileDescriptor { file in
                    var offset = off_t(region.readerIndex)
                    return sendfile(fd, file, &offset, offered)
                }
                // Nothing taken without EAGAIN: the file ends before the region does (it was
                // truncated). Waiting for room would wait forever.
                if written == 0 {
                    errno = EIO
                    return (-1, offered)
                }
                return (written, offered)
            } catch {
                errno = EBADF
                return (-1, offered)
            }
        }
        return writes.withFlushedBuffers(limit: IOVectors.capacity) { entries in
            if entries.count == 1, case .byteBuffer(let buffer) = entries.first!.data {
                guard buffer.readableBytes > 0 else { return (0, 0) }
                return (buffer.withUnsafeReadableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }, buffer.readableBytes)
            }
            return loop.vectors.write(fd, entries)
        }
    }

    private func updateWritability() {
        if !isWritable, writes.bytes < options.writeBufferWaterMark.low, case .active = state {
            writableFlag.store(true, ordering: .relaxed)
            pipeline.fireChannelWritabilityChanged()
        }
    }
}

/// A handler that takes its channel's inbound bytes straight from the socket: the pipeline's
/// only handler, so nothing in front of it would have seen them and nothing behind it is
/// owed them (`IOStreamChannel.takeInboundDirectly`). Every other event still comes through
/// the pipeline, in the same order as before.
package protocol IODirectInbound: AnyObject {
    /// `channelRead`.
    func socketRead(_ buffer: ByteBuffer)
    /// `channelReadComplete`.
    func socketReadComplete()
    /// Auto-read asks for the next read: the outbound `read` the pipeline would deliver.
    func socketWantsRead()
}

/// Unwraps what handlers wrote (`NIOAny` keeps its unwrapping to handlers).
private final class IODataUnwrapper: ChannelOutboundHandler {
    typealias OutboundIn = IOData
}
#endif
