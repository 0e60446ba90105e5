import LoomHTTP
import NIOCore

/// A WebSocket (`WebSocketUpgrade`): after the upstream's `101`, the client connection and
/// the upstream connection are one byte tunnel until either side closes. Frames are not
/// parsed (the two ends do that), so any extension or subprotocol they agree on passes.
///
/// Bytes go as they arrive, flushed once per read batch, with the backpressure bodies have:
/// a side that cannot take more stops the other side's reads. The exchange's idle timeout
/// becomes `timeouts.tunnel` and its whole-request timeout no longer applies. A FIN is passed
/// on either way, the other direction going on until its own FIN, as TCP proxies do; the
/// tunnel ends when the upstream connection is closed whole: what it sent is flushed, then
/// the client connection closes. The access log and metrics
/// record the exchange (status 101, bytes both ways) when the tunnel ends.
extension DownstreamHandler {
    func upstreamSwitchedProtocols(_ head: HTTPResponseHead) {
        guard let exchange else { return }
        deadlines.responseHeader = nil
        deadlines.perTry = nil
        deadlines.request = nil
        deadlines.idleTimeout = exchange.timeouts.tunnel
        noteActivity()
        if let started = exchange.attemptStartedAt, loop.metrics != nil { exchange.upstreamLatency = loop.now - started }
        exchange.recordOutcome(.success, loop: loop)
        exchange.forgetReplay()
        machine.tunnelOpened()
        exchange.status = head.status
        loop.metrics?.recordUpgrade(exchange)
        // The response filters see the 101 (a plugin may add fields) but cannot hold or
        // replace it: the upstream has switched protocols already.
        let rules: PreparedHeaderRules
        if case .send(let sent, _) = responseFilters(for: head, exchange, fromUpstream: false) {
            rules = sent
        } else {
            rules = exchange.route?.responseHeaders ?? .none
        }
        // Sent with the upstream's first bytes, or at the end of this read batch, as any head.
        heldHead = HeldHead(head: head, action: DownstreamStateMachine.ResponseHeadAction(framing: .none, closeAfter: false), rules: rules)
        // What the client sent after its request, before the 101 (reads may have paused).
        pumpTunnel(exchange)
        exchange.connection?.flush()
        syncDeadlines()
    }

    /// The upstream's FIN: the client gets one after what came before (its own bytes still
    /// go up). An HTTP/2 stream cannot half-close its response alone: false, and the
    /// upstream connection closes as before.
    func upstreamTunnelInputClosed() -> Bool {
        guard let context, !isHTTP2Stream else { return false }
        sendHeldHead()
        flushClient()
        // NIO shuts the socket's output once what was flushed is written (TLS: close_notify).
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure { _ in self.exchange?.connection?.close() }
        context.close(mode: .output, promise: promise)
        return true
    }

    /// Passes the client's buffered bytes to the upstream; after the client's FIN, the
    /// upstream gets one too.
    func pumpTunnel(_ exchange: Exchange) {
        guard let connection = exchange.connection else { return }
        if inbound.readableBytes > 0 {
            exchange.bytesIn += inbound.readableBytes
            connection.write(inbound)
            inbound = ByteBuffer()
        }
        if machine.inputClosed {
            connection.closeOutput()
        } else if connection.isWritable {
            resumeReading()
        } else {
            pauseReading()
        }
    }
}
