import LoomConfig
import LoomHTTP
import NIOCore
import NIOHTTP2
import LoomIO
import NIOTLS

/// One HTTP/2 connection to an upstream endpoint, owned by that endpoint's pool on one
/// event loop: every request the loop sends the endpoint is a stream of it, an
/// `UpstreamConnection` on a stream channel behind an `HTTP2UpstreamStreamBridge`.
///
/// Lifecycle: connecting (bounded by the connect timeout, TLS handshake included; over TLS
/// until ALPN agreed on `h2`, else the connect fails with the reason) → open, taking streams
/// → going away (the upstream sent GOAWAY, or the pool retired it: no new streams; closed,
/// after our own GOAWAY, once the last stream ends) → closed. The pool forgets a session
/// that is no longer open, so the next request connects anew. NIOHTTP2 queues streams
/// beyond the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS` until others end.
final class UpstreamHTTP2Session: ChannelInboundHandler {
    /// Connection-level frames NIOHTTP2 passes on (SETTINGS, PING, GOAWAY).
    typealias InboundIn = HTTP2Frame

    private let pool: UpstreamPool
    private let eventLoop: EventLoop
    private var context: ChannelHandlerContext?
    private var multiplexer: NIOHTTP2Handler.StreamMultiplexer?
    /// Completed once streams may be opened (connected, and over TLS `h2` agreed).
    private let ready: EventLoopPromise<Void>
    private var isReady = false
    private(set) var goingAway = false
    private(set) var closed = false
    /// Streams asked for and not yet closed (from `openStream`, not from their first
    /// HEADERS as NIOHTTP2 counts, so a connection is never closed under a stream about to
    /// be written).
    private(set) var openStreams = 0
    /// The upstream's GOAWAY: streams above this id were never processed (RFC 9113 §6.8).
    private var lastProcessed: HTTP2StreamID?
    /// Since when no stream has been open or asked for (for the pool's idle sweep).
    private(set) var idleSince: NIODeadline

    var isOpen: Bool { !goingAway && !closed }

    private init(pool: UpstreamPool, eventLoop: EventLoop) {
        self.pool = pool
        self.eventLoop = eventLoop
        self.ready = eventLoop.makePromise()
        self.idleSince = .now()
    }

    /// The flow-control window loom keeps open for the whole connection, as for clients
    /// (`HTTP2Connection.connectionWindow`): responses on many streams are not held to one
    /// stream's window, while each stream keeps HTTP/2's default, which bounds what a
    /// response for a slow client buffers.
    static let connectionWindow = 1 << 20

    /// Opens a connection to `pool`'s endpoint; streams wait for `ready`.
    static func connect(pool: UpstreamPool, timeout: Duration, responseLimits: HTTP1Limits) -> UpstreamHTTP2Session {
        let eventLoop = pool.eventLoop
        let session = UpstreamHTTP2Session(pool: pool, eventLoop: eventLoop)
        let bound = NIOLoopBound(session, eventLoop: eventLoop)
        let bootstrap = IOClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { [tls = pool.tls, endpoint = pool.endpoint] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpstreamTLS(tls, for: endpoint)
                    try bound.value.configure(channel, responseLimits: responseLimits)
                }
            }
        // `connectTimeout` bounds the TCP connect only: a peer that never finishes the TLS
        // handshake must not hold every request to the endpoint.
        let deadline = eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            let session = bound.value
            guard !session.isReady, !session.closed else { return }
            session.fail(ChannelError.connectTimeout(TimeAmount(timeout)))
            session.context?.close(promise: nil)
        }
        bootstrap.connect(to: pool.endpoint).whenComplete { result in
            let session = bound.value
            switch result {
            case .failure(let error):
                deadline.cancel()
                session.fail(error)
            case .success:
                // Plain HTTP/2 starts at once; TLS waits for the handshake's ALPN.
                if pool.tls == nil { session.becomeReady() }
            }
        }
        session.ready.futureResult.whenComplete { _ in deadline.cancel() }
        return session
    }

    private func configure(_ channel: Channel, responseLimits: HTTP1Limits) throws {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            // The HTTP/1.1 parser that reads the translated head enforces the exact limit.
            HTTP2Setting(parameter: .maxHeaderListSize, value: responseLimits.maxHeadBytes + 32 * 128),
        ]
        connection.targetWindowSize = Self.connectionWindow
        let operations = channel.pipeline.syncOperations
        multiplexer = try operations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: connection, streamConfiguration: .init()
        ) { pushed in
            pushed.close()  // push is off; a server that pushes anyway gets its streams refused
        }
        try operations.addHandler(self)
    }

    /// A new stream carrying one exchange, once the connection is ready.
    func openStream(limits: HTTP1Limits) -> EventLoopFuture<UpstreamConnection> {
        openStreams += 1
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        return ready.futureResult.flatMap { () -> EventLoopFuture<UpstreamConnection> in
            let self_ = session.value
            // A session retired or told to go away still serves the streams asked of it
            // before; only a closed one cannot.
            guard let multiplexer = self_.multiplexer, !self_.closed else {
                return self_.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            let connection = UpstreamConnection(pool: self_.pool, limits: limits)
            let bridge = HTTP2UpstreamStreamBridge(scheme: self_.pool.tls == nil ? "http" : "https") { id in
                // Reset by the upstream's GOAWAY without being processed: safe to send again.
                session.value.lastProcessed.map { id > $0 } ?? false
            }
            let handlers = NIOLoopBound((bridge, connection), eventLoop: self_.eventLoop)
            let created = self_.eventLoop.makePromise(of: Channel.self)
            multiplexer.createStreamChannel(promise: created) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers(handlers.value.0, handlers.value.1)
                }
            }
            return created.futureResult.map { stream in
                stream.closeFuture.whenComplete { _ in session.value.streamEnded() }
                return handlers.value.1
            }
        }.flatMapErrorThrowing { error in
            // No stream channel came to be: nothing else will count this one out.
            session.value.streamEnded()
            throw error
        }
    }

    private func streamEnded() {
        openStreams -= 1
        guard openStreams == 0 else { return }
        idleSince = .now()
        if goingAway { goAway() }
    }

    /// No new streams; the connection closes once the open ones end.
    func retire() {
        goingAway = true
        if openStreams == 0 { goAway() }
    }

    /// Our GOAWAY (RFC 9113 §6.8: a graceful close announces itself), then the close.
    private func goAway() {
        guard let context, !closed else { return }
        closed = true
        pool.sessionEnded(self)
        ready.fail(ChannelError.ioOnClosedChannel)  // nobody waits (no stream is open), but never leave it pending
        let frame = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .rootStream, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(NIOAny(frame)).whenComplete { _ in context.close(promise: nil) }
    }

    private func becomeReady() {
        guard !isReady, !closed else { return }
        isReady = true
        ready.succeed(())
    }

    private func fail(_ error: Error) {
        closed = true
        pool.sessionEnded(self)
        ready.fail(error)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // GOAWAY: no new stream goes on this connection; the streams above its last id are
        // closed by NIOHTTP2 and sent again (`HTTP2UpstreamStreamBridge.unprocessed`).
        if case .goAway(let last, _, _) = unwrapInboundIn(data).payload {
            lastProcessed = min(lastProcessed ?? last, last)
            if !goingAway {
                goingAway = true
                pool.sessionEnded(self)
                if openStreams == 0 { goAway() }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent {
            if negotiated == "h2" {
                becomeReady()
            } else {
                fail(UpstreamHTTP2Error.alpnRefused(negotiated))
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !closed { fail(ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A stream's error (NIOHTTP2 reset it) leaves the connection and its other streams be.
        guard !HTTP2Connection.isStreamError(error) else { return }
        if !isReady { fail(error) }
        context.close(promise: nil)
    }
}

/// Why an HTTP/2 connection to an upstream could not be used.
enum UpstreamHTTP2Error: Error, CustomStringConvertible {
    /// The TLS server did not agree to HTTP/2 (RFC 9113 §3.2).
    case alpnRefused(String?)

    var description: String {
        switch self {
        case .alpnRefused(let negotiated?): "the upstream chose \(negotiated) by ALPN, not HTTP/2 (h2)"
        case .alpnRefused(nil): "the upstream did not agree to HTTP/2 by ALPN (no protocol selected)"
        }
    }
}
