import LoomConfig
import LoomHTTP
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOTLS

/// One HTTP/2 connection to an upstream endpoint, owned by that endpoint's pool on one
/// event loop: every request the loop sends the endpoint is a stream of it, an
/// `UpstreamConnection` on a stream channel behind an `HTTP2UpstreamStreamBridge`.
///
/// Lifecycle: connecting (over TLS: until ALPN agreed on `h2`, else the connect fails with
/// the reason) → open, taking streams → going away (the upstream sent GOAWAY, or the pool
/// retired it: no new streams; closed once the last stream ends) → closed. The pool forgets
/// a session that is no longer open, so the next request connects anew. NIOHTTP2 queues
/// streams beyond the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS` until others end.
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
    private(set) var openStreams = 0
    /// Since when no stream has been open (for the pool's idle sweep).
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
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { [tls = pool.tls, endpoint = pool.endpoint] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpstreamTLS(tls, for: endpoint)
                    try bound.value.configure(channel, responseLimits: responseLimits)
                }
            }
        bootstrap.connect(to: pool.endpoint).whenComplete { result in
            let session = bound.value
            switch result {
            case .failure(let error):
                session.fail(error)
            case .success:
                // Plain HTTP/2 starts at once; TLS waits for the handshake's ALPN.
                if pool.tls == nil { session.becomeReady() }
            }
        }
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
        let counter = StreamCounter(session: NIOLoopBound(self, eventLoop: channel.eventLoop))
        let operations = channel.pipeline.syncOperations
        multiplexer = try operations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: connection, streamConfiguration: .init(), streamDelegate: counter
        ) { pushed in
            pushed.close()  // push is off; a server that pushes anyway gets its streams refused
        }
        try operations.addHandler(self)
    }

    /// Counts the open streams (the idle sweep and a retired session's close need them).
    private struct StreamCounter: NIOHTTP2StreamDelegate {
        let session: NIOLoopBound<UpstreamHTTP2Session>

        func streamCreated(_ id: HTTP2StreamID, channel: Channel) {
            session.value.openStreams += 1
        }

        func streamClosed(_ id: HTTP2StreamID, channel: Channel) {
            let session = session.value
            session.openStreams -= 1
            guard session.openStreams == 0 else { return }
            session.idleSince = .now()
            if session.goingAway { session.context?.close(promise: nil) }
        }
    }

    /// A new stream carrying one exchange, once the connection is ready.
    func openStream(limits: HTTP1Limits) -> EventLoopFuture<UpstreamConnection> {
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        return ready.futureResult.flatMap { () -> EventLoopFuture<UpstreamConnection> in
            let self_ = session.value
            // A session retired or told to go away still serves the streams asked of it
            // before; only a closed one cannot.
            guard let multiplexer = self_.multiplexer, !self_.closed else {
                return self_.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            let connection = UpstreamConnection(pool: self_.pool, limits: limits)
            let handlers = NIOLoopBound(
                (HTTP2UpstreamStreamBridge(scheme: self_.pool.tls == nil ? "http" : "https"), connection), eventLoop: self_.eventLoop)
            let created = self_.eventLoop.makePromise(of: Channel.self)
            multiplexer.createStreamChannel(promise: created) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers(handlers.value.0, handlers.value.1)
                }
            }
            return created.futureResult.map { _ in handlers.value.1 }
        }
    }

    /// No new streams; the connection closes once the open ones end.
    func retire() {
        goingAway = true
        if openStreams == 0 { context?.close(promise: nil) }
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
        // GOAWAY: streams the upstream will not process are closed by NIOHTTP2 (and retried
        // as streams that got no response byte); no new stream goes on this connection.
        if case .goAway = unwrapInboundIn(data).payload, !goingAway {
            goingAway = true
            pool.sessionEnded(self)
            if openStreams == 0 { context.close(promise: nil) }
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
