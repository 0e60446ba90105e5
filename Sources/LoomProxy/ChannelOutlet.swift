import LoomIO
import NIOCore

/// Where a proxy handler sends its writes, flushes and `read` requests: through its context,
/// as NIO routes them, or, when the handler is the first outbound handler on a LoomIO socket,
/// straight to the socket.
///
/// Why: the pipeline only carries such a handler's operations to its head, which hands them to
/// the channel. The trip costs context-to-context calls, the channel fetched at the head as an
/// existential (retained and released) and a `NIOAny` wrapped and unwrapped, for each write,
/// flush and read: about 2.7 % of the CPU of a proxied small GET (docs/BENCHMARKS.md, "The
/// pipeline's trip"). The socket does exactly what the head would.
///
/// Only the code that builds a pipeline knows that nothing sits in front of a handler (no TLS,
/// no HTTP/2), so it says so (`direct`); on any other channel (NIO's own, an HTTP/2 stream,
/// `EmbeddedChannel`) the outlet goes through the pipeline whatever it was told. A handler
/// that is direct must stay first: nothing may be added in front of it later.
struct ChannelOutlet {
    private(set) var context: ChannelHandlerContext?
    private var socket: IOStreamChannel?

    /// The handler was added at `context`; `direct`: its builder put nothing in front of it.
    mutating func attach(_ context: ChannelHandlerContext, direct: Bool) {
        self.context = context
        socket = direct ? context.channel as? IOStreamChannel : nil
    }

    /// The handler was removed: operations stop.
    mutating func detach() {
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
