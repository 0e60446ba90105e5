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
    typealias InboundIn = Never

    private let loop: LoopContext
    private var context: ChannelHandlerContext?

    private init(loop: LoopContext) {
        self.loop = loop
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

        init(_ snapshot: ProxySnapshot) {
            let server = snapshot.configuration.server
            maxConcurrentStreams = server.limits.maxConcurrentStreams
            maxHeaderListSize = server.limits.maxHeaderBytes + 32 * 128
            idleTimeout = TimeAmount(server.timeouts.idle)
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
        ]
        connection.targetWindowSize = connectionWindow
        // The flood defences (RST_STREAM, CONTINUATION, empty DATA, control frames, the
        // "glitches" count) are NIOHTTP2's defaults, which bound each of them.
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: limits.idleTimeout, maxAge: nil, maxGraceTime: nil, keepalive: nil))
        let operations = channel.pipeline.syncOperations
        _ = try operations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: .init(),
            streamDelegate: manager.http2StreamDelegate
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                try streamChannel.pipeline.syncOperations.addHandler(HTTP2StreamBridge())
                try stream.value(streamChannel)
            }
        }
        try operations.addHandler(manager)
        try operations.addHandler(HTTP2Connection(loop: loop))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        loop.unregister(self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        loop.unregister(self)
        context.fireChannelInactive()
    }

    /// NIOHTTP2 sent GOAWAY for a connection error (a flood, a malformed frame, a header
    /// list over the limit) and leaves the closing to us; a stream error only reset its
    /// stream, and the connection goes on. The close waits a loop tick: the error can be
    /// raised inside a flush (a frame the connection state refuses while the frames before
    /// it wait in NIOHTTP2's buffer), and closing at once would drop those.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOHTTP2Errors.StreamError { return }
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.execute { context.value.close(promise: nil) }
    }

    /// GOAWAY, then the connection closes when its last stream ends.
    func beginShutdown() {
        context?.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    func forceClose() {
        context?.close(promise: nil)
    }
}
