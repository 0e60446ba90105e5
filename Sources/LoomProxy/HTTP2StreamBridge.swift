import NIOCore
import NIOHPACK
import NIOHTTP2

/// The first handler of an HTTP/2 stream's channel: it turns the stream's frames into the
/// HTTP/1.1 request the `DownstreamHandler` after it parses, and that handler's HTTP/1.1
/// response back into frames (`HTTP2RequestTranslator`, `HTTP2ResponseTranslator`).
///
/// One request path for both protocols is the design choice (HAProxy's before its HTX
/// rewrite): every filter, plugin phase, retry and limit works for HTTP/2 as for HTTP/1.1,
/// at the cost of writing and parsing the head once more per request. What HTTP/1.1 cannot
/// say is mapped here: a half close of the output (`DownstreamHandler` ending a response
/// before a lingering close) ends the stream instead of resetting it; closing the channel
/// before the response ended resets the stream (RST_STREAM), so a client never takes a cut
/// response for a whole one. Flow control needs nothing extra: the stream channel's
/// writability and `read()` are the connection's as far as `DownstreamHandler` can tell.
final class HTTP2StreamBridge: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    /// `DownstreamHandler` writes bytes only on a stream (no `FileRegion`: it knows sendfile
    /// cannot reach an HTTP/2 client); a file region would fail its write, not the process.
    typealias OutboundIn = IOData
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var request = HTTP2RequestTranslator()
    private var response: HTTP2ResponseTranslator?
    /// Frames from one write, reused across writes.
    private var parts: [HTTP2FramePart] = []
    /// A WebSocket stream's end was passed on as `inputClosed`.
    private var inputClosed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var out = context.channel.allocator.buffer(capacity: 0)
        switch unwrapInboundIn(data) {
        case .headers(let headers) where request.body == .awaitingHead:
            do {
                out.reserveCapacity(512)
                try request.head(headers.headers, endStream: headers.endStream, into: &out)
            } catch {
                // Malformed for HTTP/1.1 (RFC 9113 §8.1.1: a stream error of type PROTOCOL_ERROR).
                context.writeAndFlush(wrapOutboundOut(.rstStream(.protocolError)), promise: nil)
                context.close(promise: nil)
                return
            }
            response = HTTP2ResponseTranslator(requestMethod: request.method, webSocket: request.isWebSocket)
        case .headers(let trailers):
            request.trailers(trailers.headers, into: &out)
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else { return }
            request.data(bytes, endStream: data.endStream, into: &out)
        default:
            return  // PRIORITY, WINDOW_UPDATE, RST_STREAM: NIOHTTP2's business
        }
        if out.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(out)) }
        // A WebSocket's END_STREAM is the client's FIN: half-closed, as a TCP client's.
        if request.isWebSocket, request.body == .ended, !inputClosed {
            inputClosed = true
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard response != nil else {
            // Nothing is written before a request head was read.
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard case .byteBuffer(let bytes) = unwrapOutboundIn(data) else {
            promise?.fail(ChannelError.operationUnsupported)
            context.close(promise: nil)
            return
        }
        parts.removeAll(keepingCapacity: true)
        do {
            try response!.translate(bytes, into: &parts)
        } catch {
            promise?.fail(error)
            context.close(promise: nil)
            return
        }
        guard !parts.isEmpty else {
            promise?.succeed(())
            return
        }
        for (index, part) in parts.enumerated() {
            context.write(wrapOutboundOut(HTTP2Frame.FramePayload(part)), promise: index == parts.count - 1 ? promise : nil)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // A body delimited by the close ends with END_STREAM, not a reset.
        if let last = response?.finishAtClose() {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame.FramePayload(last)), promise: nil)
        }
        let requestArriving = request.body != .none && request.body != .ended
        if response?.finished == true, requestArriving {
            // A whole response to a request still arriving: the client may stop sending it
            // "without error" (RFC 9113 §8.1), rather than be told it was cancelled, and
            // now rather than after `DownstreamHandler`'s lingering close.
            context.writeAndFlush(wrapOutboundOut(.rstStream(.noError)), promise: nil)
            context.close(promise: promise)
        } else if mode == .output {
            // HTTP/1.1's FIN after a response: the stream's end was sent with it (or, for a
            // cut response, the reset comes with the full close that follows).
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}
