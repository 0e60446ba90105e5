import LoomHTTP
import NIOCore
import NIOTLS

/// Decides whether a new connection speaks HTTP/1.1 or HTTP/2, builds the pipeline for it,
/// and steps aside, handing on the bytes it held.
///
/// Over TLS the handshake decides (ALPN `h2`, RFC 9113 §3.2); in cleartext (`h2c`
/// listeners) the client's first bytes do: the HTTP/2 connection preface means prior
/// knowledge (§3.3); a first HTTP/1.1 request asking `Upgrade: h2c` (`H2CUpgrade`) is
/// answered 101 and continues as stream 1 of an HTTP/2 connection; anything else is
/// HTTP/1.1. A connection that decides nothing in time (no handshake, no whole first head)
/// is closed: nothing else times it yet.
final class ProtocolSelector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Signal {
        /// The TLS handshake's negotiated protocol.
        case alpn
        /// The client's first bytes.
        case preface
    }

    enum Version {
        case http1, http2
        /// HTTP/2 after `101 Switching Protocols`, the request that asked for it being the
        /// HEADERS frame of stream 1 (`H2CUpgradeSplicer`).
        case http2Upgrade(firstStream: ByteBuffer)
    }

    private let signal: Signal
    private let timeout: TimeAmount
    private let configure: (Channel, Version) throws -> Void
    private var held: ByteBuffer?
    private var timer: Scheduled<Void>?
    /// Reads a first HTTP/1.1 head for an `Upgrade: h2c` (`.preface` only).
    private var upgradeParser: HTTP1HeadParser

    /// `configure` adds the handlers for the chosen version at the end of the pipeline;
    /// `limits` bound the HTTP/1.1 head read for an upgrade.
    init(signal: Signal, timeout: TimeAmount, limits: HTTP1Limits, configure: @escaping (Channel, Version) throws -> Void) {
        self.signal = signal
        self.timeout = timeout
        self.configure = configure
        self.upgradeParser = HTTP1HeadParser(limits: limits)
    }

    /// The HTTP/2 client connection preface (RFC 9113 §3.4).
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Whether `bytes` are the preface, are not, or could still become it.
    static func matchPreface(_ bytes: ByteBuffer) -> Bool? {
        let count = min(bytes.readableBytes, preface.count)
        guard bytes.readableBytesView.prefix(count).elementsEqual(preface.prefix(count)) else { return false }
        return count == preface.count ? true : nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if held == nil {
            held = bytes
        } else {
            held!.writeBuffer(&bytes)
        }
        guard signal == .preface, let isPreface = Self.matchPreface(held!) else { return }
        if isPreface {
            select(.http2, context: context)
        } else if let version = upgradeOrHTTP1(context: context) {
            select(version, context: context)
        }
    }

    /// `.http2Upgrade` (with the 101 written) for a first request that asks for h2c,
    /// `.http1` for any other, nil while its head is incomplete. A head the parser refuses
    /// goes to HTTP/1.1 too, which answers it as it answers any bad request.
    private func upgradeOrHTTP1(context: ChannelHandlerContext) -> Version? {
        var rest = held!
        let head: HTTPRequestHead?
        do {
            head = try upgradeParser.parseRequestHead(&rest)
        } catch {
            return .http1
        }
        guard let head else { return nil }
        guard rest.readableBytes == 0, let fields = H2CUpgrade.fields(of: head), let frame = H2CUpgrade.headersFrame(fields) else {
            return .http1
        }
        held = nil
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: H2CUpgrade.switching)), promise: nil)
        return .http2Upgrade(firstStream: frame)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if signal == .alpn, case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            select(negotiated == "h2" ? .http2 : .http1, context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func select(_ version: Version, context: ChannelHandlerContext) {
        timer?.cancel()
        do {
            try configure(context.channel, version)
        } catch {
            context.close(promise: nil)
            return
        }
        if let held {
            self.held = nil
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
