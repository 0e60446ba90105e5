import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A backend that answers every request head with fixed bytes, for responses a real server
/// would never produce (malformed, smuggling attempts, close-delimited bodies).
///
/// It reads until the end of a request head (`\r\n\r\n`), writes `response`, and closes the
/// connection afterwards when `closeAfter` is set. Request bytes it saw are kept for checks.
final class RawBackend: @unchecked Sendable {
    let group: EventLoopGroup
    let response: String
    let closeAfter: Bool
    private(set) var channel: Channel!
    let received = NIOLockedValueBox("")

    var port: Int { channel.localAddress!.port! }

    init(group: EventLoopGroup, response: String, closeAfter: Bool = true) {
        self.group = group
        self.response = response
        self.closeAfter = closeAfter
    }

    func start() async throws {
        let response = self.response
        let closeAfter = self.closeAfter
        let received = self.received
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RawHandler(response: response, closeAfter: closeAfter, received: received))
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
    let received: NIOLockedValueBox<String>
    var pending = ""

    init(response: String, closeAfter: Bool, received: NIOLockedValueBox<String>) {
        self.response = response
        self.closeAfter = closeAfter
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        pending += text
        received.withLockedValue { $0 += text }
        guard pending.contains("\r\n\r\n") else { return }
        pending = ""
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in
            if self.closeAfter { context.close(promise: nil) }
        }
    }
}
