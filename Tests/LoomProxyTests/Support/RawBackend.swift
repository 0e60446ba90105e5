import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A backend that answers every request head with fixed bytes, for responses a real server
/// would never produce (malformed, smuggling attempts, close-delimited bodies).
///
/// It reads until the end of a request head (`\r\n\r\n`), writes `response`, and closes the
/// connection afterwards when `closeAfter` is set, or only its sending side (a FIN; it then
/// keeps reading, and records the end of the peer's input, FIN or close, as "<END>") when
/// `halfCloseAfter` is. Request
/// bytes it saw are kept for checks.
final class RawBackend: @unchecked Sendable {
    let group: EventLoopGroup
    let response: String
    let closeAfter: Bool
    let halfCloseAfter: Bool
    private(set) var channel: Channel!
    let received = NIOLockedValueBox("")

    var port: Int { channel.localAddress!.port! }

    init(group: EventLoopGroup, response: String, closeAfter: Bool = true, halfCloseAfter: Bool = false) {
        self.group = group
        self.response = response
        self.closeAfter = closeAfter
        self.halfCloseAfter = halfCloseAfter
    }

    func start() async throws {
        let response = self.response
        let closeAfter = self.closeAfter
        let halfCloseAfter = self.halfCloseAfter
        let received = self.received
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: halfCloseAfter)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RawHandler(response: response, closeAfter: closeAfter, halfCloseAfter: halfCloseAfter, received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async {
        try? await channel?.close()
    }
}

private final class RawHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let response: String
    let closeAfter: Bool
    let halfCloseAfter: Bool
    let received: NIOLockedValueBox<String>
    var pending = ""

    init(response: String, closeAfter: Bool, halfCloseAfter: Bool, received: NIOLockedValueBox<String>) {
        self.response = response
        self.closeAfter = closeAfter
        self.halfCloseAfter = halfCloseAfter
        self.received = received
    }

    private var ended = false

    /// NIO reports the peer's FIN as `inputClosed`, or (its own output being shut already) by
    /// closing the channel.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            recordEnd()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        recordEnd()
    }

    private func recordEnd() {
        guard halfCloseAfter, !ended else { return }
        ended = true
        received.withLockedValue { $0 += "<END>" }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        pending += text
        received.withLockedValue { $0 += text }
        guard pending.contains("\r\n\r\n") else { return }
        pending = ""
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in
            if self.halfCloseAfter {
                context.close(mode: .output, promise: nil)
            } else if self.closeAfter {
                context.close(promise: nil)
            }
        }
    }
}
