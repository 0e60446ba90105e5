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

    /// The outbound `read` event: whether to forward it now (else it is held while paused).
    /// The caller forwards it after this returns: a `read` can re-enter the handler
    /// synchronously (an HTTP/2 stream channel delivers buffered frames, and asks for the
    /// next read, inside it), so the gate must not be mid-mutation then.
    mutating func admit() -> Bool {
        if isPaused { readHeld = true }
        return !isPaused
    }

    mutating func pause() {
        isPaused = true
    }

    /// Lifts the pause; whether a held read is to be issued now (by the caller, as for `admit`).
    mutating func resume() -> Bool {
        guard isPaused else { return false }
        isPaused = false
        defer { readHeld = false }
        return readHeld
    }
}
