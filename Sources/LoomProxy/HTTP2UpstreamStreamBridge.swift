import NIOCore
import NIOHPACK
import NIOHTTP2

/// The first handler of a stream to an HTTP/2 upstream: the `UpstreamConnection` after it
/// writes an HTTP/1.1 request and parses an HTTP/1.1 response, and this handler turns one
/// into frames and the frames that come back into the other
/// (`HTTP2UpstreamRequestTranslator`, `HTTP2UpstreamResponseTranslator`).
///
/// What HTTP/1.1 cannot say is mapped here: a stream the upstream resets (RST_STREAM) or
/// that ends with its connection closes this channel, which `UpstreamConnection` reports as
/// the upstream closing (a retry when no response byte came, and the rules allow); a stream
/// the upstream never processed (RST_STREAM `REFUSED_STREAM`, or above the last id of its
/// GOAWAY) is reported as such first (`UpstreamStreamRefused`), since sending it again is
/// always safe (RFC 9113 §8.7); a response that cannot be translated resets the stream. Flow control needs nothing extra: the stream channel's
/// writability and `read()` are the stream's window as far as `UpstreamConnection` can tell.
final class HTTP2UpstreamStreamBridge: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var request: HTTP2UpstreamRequestTranslator
    private var response: HTTP2UpstreamResponseTranslator?
    /// Frames from one write, reused across writes.
    private var parts: [HTTP2FramePart] = []

    /// Whether the session's GOAWAY left the stream with this id unprocessed.
    private let unprocessed: (HTTP2StreamID) -> Bool

    init(scheme: String, unprocessed: @escaping (HTTP2StreamID) -> Bool = { _ in false }) {
        request = HTTP2UpstreamRequestTranslator(scheme: scheme)
        self.unprocessed = unprocessed
    }

    /// NIOHTTP2 reports a stream's reset as an error just before the channel closes.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed,
            closed.errorCode == .refusedStream || (closed.errorCode == .cancel && unprocessed(closed.streamID))
        {
            context.fireErrorCaught(UpstreamStreamRefused())
            return
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        parts.removeAll(keepingCapacity: true)
        do {
            try request.translate(unwrapOutboundIn(data), into: &parts)
        } catch {
            promise?.fail(error)
            context.close(promise: nil)
            return
        }
        if response == nil, let method = request.method { response = HTTP2UpstreamResponseTranslator(requestMethod: method) }
        guard !parts.isEmpty else {
            promise?.succeed(())
            return
        }
        for (index, part) in parts.enumerated() {
            context.write(wrapOutboundOut(HTTP2Frame.FramePayload(part)), promise: index == parts.count - 1 ? promise : nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard response != nil else { return }  // nothing comes before the request's HEADERS
        var out = context.channel.allocator.buffer(capacity: 0)
        switch unwrapInboundIn(data) {
        case .headers(let headers) where response!.body == .awaitingHead:
            out.reserveCapacity(256)
            do {
                try response!.head(headers.headers, endStream: headers.endStream, into: &out)
            } catch {
                context.close(promise: nil)  // RST_STREAM; the connection reports the upstream closed
                return
            }
        case .headers(let trailers):
            response!.trailers(trailers.headers, into: &out)
        case .data(let data):
            guard case .byteBuffer(let bytes) = data.data else { return }
            response!.data(bytes, endStream: data.endStream, into: &out)
        default:
            return  // WINDOW_UPDATE, RST_STREAM (the channel closes next): NIOHTTP2's business
        }
        if out.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(out)) }
    }
}

/// The upstream did not process the stream (RFC 9113 §8.7): it may be sent again, whatever
/// its method.
struct UpstreamStreamRefused: Error {}
