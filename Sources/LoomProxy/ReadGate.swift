import NIOCore

/// Read backpressure for one channel: holds the channel's `read` while the other side of the
/// proxy cannot take more bytes, and replays it when released.
///
/// With auto-read on, NIO asks for the next read after every read batch; a handler that
/// swallows that `read` stops the socket being read (the kernel's buffer then pushes back on
/// the peer) without toggling epoll interest on every request.
struct ReadGate {
    private(set) var isPaused = false
    private var readHeld = false

    /// The outbound `read` event: forwarded, or held while paused.
    mutating func read(_ context: ChannelHandlerContext) {
        if isPaused {
            readHeld = true
        } else {
            context.read()
        }
    }

    mutating func pause() {
        isPaused = true
    }

    /// Lifts the pause and issues the held read, if any.
    mutating func resume(_ context: ChannelHandlerContext?) {
        guard isPaused else { return }
        isPaused = false
        if readHeld, let context {
            readHeld = false
            context.read()
        }
    }
}
