import NIOCore

/// One side of a forwarded connection pair: what it reads is written, and flushed, to the
/// other side. Each client connection gets its own upstream connection, made before the
/// client's first read, so a keep-alive benchmark measures only the forwarding: one read
/// and one write per direction per request, as a keep-alive HTTP/1.1 proxy does.
public final class Forwarder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer

    public var peer: Channel?

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer?.write(unwrapInboundIn(data), promise: nil)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        peer?.flush()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        peer?.close(promise: nil)
        peer = nil
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

