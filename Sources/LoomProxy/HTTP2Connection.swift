import LoomConfig
import NIOCore
import NIOHTTP2

/// An HTTP/2 client connection as its loop sees it: registered for graceful shutdown, where
/// it sends GOAWAY and closes once its streams are done (through NIOHTTP2's connection
/// manager), and counted as one open connection however many streams it carries.
///
/// `configure` builds the connection's pipeline: NIOHTTP2's protocol handler with loom's
/// limits, the connection manager (idle timeout, GOAWAY), this handler, and for each stream
/// the stream bridge and a `DownstreamHandler`. Each stream is a request of its own on the
/// HTTP/1.1 path (`HTTP2StreamBridge`), on this connection's loop.
final class HTTP2Connection: ChannelInboundHandler, DrainableConnection {
    /// Connection-level frames NIOHTTP2 passes on (SETTINGS, PING, GOAWAY); forwarded as they come.
    typealias InboundIn = HTTP2Frame

    private let loop: LoopContext
    private var context: ChannelHandlerContext?
    /// Streams open now (counted through `StreamCounter`).
    private var openStreams = 0
    /// The backstop of the idle timeout: NIOHTTP2's manager sends GOAWAY after `idleTimeout`
    /// without a stream, but only closes once the client answers its PING; a client that
    /// never does is closed here when `graceTime` has passed on top.
    private var idleClose: Scheduled<Void>?
    private let idleLimit: TimeAmount

    private init(loop: LoopContext, idleLimit: TimeAmount) {
        self.loop = loop
        self.idleLimit = idleLimit
    }

    /// Passes NIOHTTP2's stream events to the connection manager and counts them here.
    private struct StreamCounter: NIOHTTP2StreamDelegate {
        let manager: NIOHTTP2ServerConnectionManagementHandler.HTTP2StreamDelegate
        let connection: NIOLoopBound<HTTP2Connection>

        func streamCreated(_ id: HTTP2StreamID, channel: Channel) {
            manager.streamCreated(id, channel: channel)
            connection.value.openStreams += 1
            connection.value.idleClose?.cancel()
        }

        func streamClosed(_ id: HTTP2StreamID, channel: Channel) {
            manager.streamClosed(id, channel: channel)
            connection.value.openStreams -= 1
            if connection.value.openStreams == 0 { connection.value.armIdleClose() }
        }
    }

    private func armIdleClose() {
        guard let context else { return }
        idleClose?.cancel()
        idleClose = context.eventLoop.assumeIsolated().scheduleTask(in: idleLimit) { context.close(promise: nil) }
    }

    /// What loom announces and enforces on a connection.
    struct Limits {
        /// SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once.
        var maxConcurrentStreams: Int
        /// SETTINGS_MAX_HEADER_LIST_SIZE, beyond which the connection is closed (GOAWAY).
        /// HTTP/2 counts 32 bytes more per field than the field's text, so this is
        /// `server.limits.max_header_size` plus that overhead for 128 fields: the exact limit
        /// is the HTTP/1.1 head parser's, which answers 431 as it does for HTTP/1.1.
        var maxHeaderListSize: Int
        /// An HTTP/2 connection with no open stream for this long is closed (GOAWAY).
        var idleTimeout: TimeAmount
        /// How long a connection told to go away (GOAWAY: idle, or loom shutting down) may
        /// take to finish its streams: `server.shutdown_timeout`.
        var graceTime: TimeAmount

        init(_ snapshot: ProxySnapshot) {
            let server = snapshot.configuration.server
            maxConcurrentStreams = server.limits.maxConcurrentStreams
            maxHeaderListSize = server.limits.maxHeaderBytes + 32 * 128
            idleTimeout = TimeAmount(server.timeouts.idle)
            graceTime = TimeAmount(server.shutdownTimeout)
        }
    }

    /// The flow-control window loom keeps open for the whole connection: uploads on many
    /// streams at once are not held to one stream's 64 KiB. Each stream keeps HTTP/2's
    /// default window, which bounds what a stream whose upstream is slow buffers.
    static let connectionWindow = 1 << 20

    /// Adds the HTTP/2 handlers to `channel` (on its loop); `stream` sets up each stream's
    /// own handlers after the bridge.
    static func configure(
        _ channel: Channel, loop: LoopContext, limits: Limits, stream: @escaping (Channel) throws -> Void
    ) throws {
        // Stream channels live on their connection's loop.
        let stream = NIOLoopBound(stream, eventLoop: channel.eventLoop)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderListSize),
            // WebSocket over HTTP/2 (RFC 8441): extended CONNECT with `:protocol websocket`.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        connection.targetWindowSize = connectionWindow
        // The flood defences (RST_STREAM, CONTINUATION, empty DATA, control frames, the
        // "glitches" count) are NIOHTTP2's defaults, which bound each of them.
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: limits.idleTimeout, maxAge: nil, maxGraceTime: limits.graceTime, keepalive: nil))
        let operations = channel.pipeline.syncOperations
        let handle = HTTP2Connection(loop: loop, idleLimit: limits.idleTimeout + limits.graceTime)
        let counter = StreamCounter(manager: manager.http2StreamDelegate, connection: NIOLoopBound(handle, eventLoop: channel.eventLoop))
        _ = try operations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: .init(), streamDelegate: counter
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                try streamChannel.pipeline.syncOperations.addHandler(HTTP2StreamBridge())
                try stream.value(streamChannel)
            }
        }
        try operations.addHandler(manager)
        // The channel is active already (the protocol was chosen after it was): the manager
        // starts its idle timer on `channelActive`, which it would otherwise never see. Before
        // `handle` registers with the loop: a shutdown already under way asks the manager to
        // quiesce at once, which it must see as an active connection's.
        manager.channelActive(context: try operations.context(handler: manager))
        try operations.addHandler(handle)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.register(self)
        armIdleClose()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        idleClose?.cancel()
        loop.unregister(self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleClose?.cancel()
        loop.unregister(self)
        context.fireChannelInactive()
    }

    /// An error NIOHTTP2 reports after resetting one stream (a malformed request head, a
    /// body longer than its content-length, a frame for a closed stream): the connection and
    /// its other streams go on. NIOHTTP2 hands the parent these without saying they were
    /// stream errors, hence the list; too many of them become `ExcessiveStreamErrors`.
    static func isStreamError(_ error: Error) -> Bool {
        switch error {
        case is NIOHTTP2Errors.StreamError, is NIOHTTP2Errors.StreamClosed, is NIOHTTP2Errors.NoSuchStream,
             is NIOHTTP2Errors.CreatedStreamAfterGoaway, is NIOHTTP2Errors.MissingPseudoHeader,
             is NIOHTTP2Errors.DuplicatePseudoHeader, is NIOHTTP2Errors.PseudoHeaderAfterRegularHeader,
             is NIOHTTP2Errors.UnknownPseudoHeader, is NIOHTTP2Errors.UnsupportedPseudoHeader,
             is NIOHTTP2Errors.InvalidPseudoHeaders, is NIOHTTP2Errors.MissingHostHeader,
             is NIOHTTP2Errors.DuplicateHostHeader, is NIOHTTP2Errors.EmptyPathHeader,
             is NIOHTTP2Errors.InvalidStatusValue, is NIOHTTP2Errors.TrailersWithoutEndStream,
             is NIOHTTP2Errors.ForbiddenHeaderField, is NIOHTTP2Errors.InvalidPseudoHeaderValue,
             is NIOHTTP2Errors.InvalidHTTP2HeaderFieldName, is NIOHTTP2Errors.ContentLengthViolated,
             is NIOHTTP2Errors.ContentLengthHeadersMismatch, is NIOHTTP2Errors.ContentLengthHeaderNegative,
             is NIOHTTP2Errors.ContentLengthHeaderMalformedValue:
            true
        default:
            false
        }
    }

    /// Anything else is the connection's end: NIOHTTP2 sent GOAWAY for a connection error
    /// (a flood, a malformed frame, a header list over the limit) and leaves the closing to
    /// us, or the socket or TLS failed. The close waits a loop tick: the error can be raised
    /// inside a flush (a frame the connection state refuses while the frames before it wait
    /// in NIOHTTP2's buffer), and closing at once would drop those.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !Self.isStreamError(error) else { return }
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.execute { context.value.close(promise: nil) }
    }

    /// A client that half-closed its side sends no more streams: finish the open ones and go.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { beginShutdown() }
        context.fireUserInboundEventTriggered(event)
    }

    /// GOAWAY, then the connection closes when its last stream ends.
    func beginShutdown() {
        context?.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    func forceClose() {
        context?.close(promise: nil)
    }
}
