import LoomIO
import NIOCore

/// Where a proxy handler's operations go: through its context, as NIO routes them, or, when
/// the handler is alone in a LoomIO socket's pipeline, straight to and from the socket.
///
/// Why: the pipeline only carries such a handler's writes, flushes and `read`s to its head,
/// which hands them to the channel, and brings it the channel's reads from the head. Each trip
/// costs context-to-context calls, the channel fetched as an existential at the head (retained
/// and released) and a `NIOAny` wrapped and unwrapped: about 0.7 µs of CPU per proxied small
/// GET, both directions together (docs/BENCHMARKS.md, "The pipeline's trip"). The socket
/// does exactly what the pipeline would have done.
///
/// Only the code that builds a pipeline knows that a handler is alone in it (no TLS, no
/// HTTP/2, no protocol selector left), so the handler is told (`alone`); on any other channel
/// (NIO's own, an HTTP/2 stream, `EmbeddedChannel`) the outlet uses the pipeline whatever it
/// was told. A handler that is alone must stay so: nothing may be added to its pipeline later.
/// Reads come straight only for `IODirectInbound`'s three events; every other event
/// (active, inactive, writability, errors, user events) still comes through the pipeline.
///
/// Its operations are not `mutating`, and keep no state of their own (the handlers track
/// what is unflushed): a write or a flush re-enters the handler (writability changes, a
/// failed write closing the channel), which then writes again, and a mutating call in
/// progress would make that an overlapping access to the handler's outlet, a runtime trap.
struct ChannelOutlet {
    private(set) var context: ChannelHandlerContext?
    private var socket: IOStreamChannel?

    /// The handler was added at `context`; `alone`: the handler itself, when the code that
    /// built the pipeline put nothing else in it.
    mutating func attach(_ context: ChannelHandlerContext, alone handler: (any IODirectInbound)?) {
        self.context = context
        socket = handler == nil ? nil : context.channel as? IOStreamChannel
        socket?.takeInboundDirectly(handler)
    }

    /// The handler was removed: operations stop, and the socket lets go of it.
    mutating func detach() {
        socket?.takeInboundDirectly(nil)
        context = nil
        socket = nil
    }

    var isDirect: Bool { socket != nil }

    var isWritable: Bool {
        if let socket { return socket.isWritable }
        return context?.channel.isWritable ?? false
    }

    func write(_ buffer: ByteBuffer) {
        if let socket {
            socket.writeDirectly(buffer)
        } else {
            context?.write(NIOAny(buffer), promise: nil)
        }
    }

    func flush() {
        if let socket {
            socket.flush0()
        } else {
            context?.flush()
        }
    }

    func read() {
        if let socket {
            socket.read0()
        } else {
            context?.read()
        }
    }
}

/// A handler that takes its reads through `ChannelOutlet`: the pipeline's `read`,
/// `channelRead` and `channelReadComplete` go to the same three methods the socket calls
/// when the handler is alone.
package protocol SocketReadingHandler: ChannelDuplexHandler, IODirectInbound where InboundIn == ByteBuffer {}

extension SocketReadingHandler {
    package func read(context: ChannelHandlerContext) {
        socketWantsRead()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        socketRead(unwrapInboundIn(data))
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        socketReadComplete()
    }
}
