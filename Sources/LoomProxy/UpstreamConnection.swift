import LoomConfig
import LoomHTTP
import LoomIO
import NIOCore

/// What an upstream connection reports while it carries one exchange.
///
/// Implemented by `DownstreamHandler`. Calls happen on the shared event loop, in wire order;
/// after `upstreamResponseEnd` or `upstreamFailed` no more calls come for that exchange.
protocol UpstreamResponseSink: AnyObject {
    /// A 1xx interim response (never 101: see `upstreamSwitchedProtocols`).
    func upstreamInformational(_ head: HTTPResponseHead)
    /// Consuming: the head moves on to the client's side rather than being copied.
    func upstreamResponseHead(_ head: consuming HTTPResponseHead)
    /// The upstream accepted the WebSocket upgrade the exchange asked for: from now on
    /// `upstreamResponseBody` brings the upgraded connection's bytes, unframed, and
    /// `upstreamResponseEnd` its end (the upstream closed).
    func upstreamSwitchedProtocols(_ head: HTTPResponseHead)
    /// The upstream half-closed the tunnel (FIN) and may still read: the client gets its
    /// FIN once what came before is delivered; `upstreamResponseEnd` comes when the
    /// connection is closed whole. Returns false when the client side cannot half-close
    /// (an HTTP/2 stream): the connection is then closed at once.
    func upstreamTunnelInputClosed() -> Bool
    func upstreamResponseBody(_ data: ByteBuffer)
    func upstreamResponseEnd(trailers: HTTPHeaderBlock?)
    /// The connection failed; `receivedBytes` tells whether any response byte had arrived
    /// (only a connection that produced nothing may be retried).
    func upstreamFailed(_ error: GatewayError, receivedBytes: Bool)
    func upstreamWritabilityChanged(writable: Bool)
    /// End of a read batch: the moment to write a held response head and flush.
    func upstreamReadComplete()
}

/// One connection to an upstream endpoint: the channel handler that parses its responses,
/// plus the pool bookkeeping.
///
/// Lifecycle: connecting → active (carrying an exchange for `sink`) → idle in the pool →
/// active again …, until closed; or, after a `101`, a tunnel for its exchange's bytes until
/// closed. Lives on one event loop; never touched from elsewhere.
package final class UpstreamConnection: SocketReadingHandler, CoalescedFlushing {
    // The conformance's members are `package` only because the type is (for the pool
    // micro-benchmark); Swift requires witnesses to be as visible as their type.
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private enum State {
        case idle(since: NIODeadline)
        case awaitingHead
        case body
        /// Upgraded (WebSocket): bytes pass through unparsed; never pooled again.
        case tunnel
        /// Response finished; waiting for the owner to release or close us.
        case done
        case closed
    }

    /// Strong: a reload may drop the pool from its loop (`LoopContext.reconcilePools`) while
    /// this connection is still in use; the pool lives until the connection is done. The
    /// cycle with an idle connection ends when the connection closes and leaves the pool.
    private let pool: UpstreamPool
    private let limits: HTTP1Limits
    /// Where writes, flushes and reads go: straight to the socket without TLS.
    private var outlet = ChannelOutlet()
    private var context: ChannelHandlerContext? { outlet.context }
    private var state: State = .done
    private var sink: UpstreamResponseSink?
    private var parser: HTTP1HeadParser
    private var decoder = HTTP1BodyDecoder(framing: .none, limits: HTTP1Limits())
    /// Bytes received and not yet parsed (the cumulation buffer).
    private var inbound = ByteBuffer()
    private var requestMethod = "GET"
    /// The `Sec-WebSocket-Key` of the exchange's WebSocket handshake: only a `101` that
    /// accepts it is valid.
    private var upgradeKey: String?
    /// `closeOutput` sent our FIN on the tunnel.
    private var outputClosed = false
    /// The upstream sent its FIN on the tunnel (`upstreamTunnelInputClosed`).
    private var inputClosed = false
    private var receivedBytes = false
    /// An HTTP/2 upstream refused the stream unprocessed (`UpstreamStreamRefused`).
    private var refused = false
    private var responseKeepAlive = false
    /// Backpressure: a `read` held back while the downstream cannot take more.
    private var readGate = ReadGate()
    private var unflushed = false
    /// A flush waits for the end of the loop tick (`LoopTick`).
    var flushHeld = false
    /// The buffers the heads of this connection's exchanges are written into, reused from one
    /// exchange to the next (see `reusing`).
    private var requestHeadStorage = ByteBuffer()
    private var responseHeadStorage = ByteBuffer()
    /// A head buffer grown past this (a big head, or a head with a merged body) is not kept:
    /// a pooled connection holds at most this much per direction while idle.
    static let keptHeadCapacity = 4 * 1024

    var endpoint: Endpoint { pool.endpoint }
    /// A stream to an HTTP/2 upstream (behind an `HTTP2UpstreamStreamBridge`).
    var endpointSpeaksHTTP2: Bool { pool.http2 }

    package init(pool: UpstreamPool, limits: HTTP1Limits) {
        self.pool = pool
        self.limits = limits
        self.parser = HTTP1HeadParser(limits: limits)
    }

    // MARK: Owner API

    /// Live and reusable: connected, not carrying an exchange, nothing unexpected received.
    var isUsable: Bool {
        // Our own state, not `channel.isActive` (an atomic load behind two getters, twice per
        // request): `channelInactive` marks us closed as soon as the channel goes.
        guard context != nil else { return false }
        switch state {
        case .idle, .done: return true
        default: return false
        }
    }

    var isWritable: Bool { outlet.isWritable }

    var idleSince: NIODeadline? {
        if case .idle(let since) = state { return since }
        return nil
    }

    /// Whether the last response allows reusing the connection.
    var canBeReused: Bool {
        if case .done = state { return responseKeepAlive && inbound.readableBytes == 0 }
        return false
    }

    /// Starts carrying an exchange: responses now go to `sink`. `upgradeKey`: the request
    /// asks for a WebSocket with this key (`WebSocketUpgrade`).
    func attach(_ sink: UpstreamResponseSink, requestMethod: String, upgradeKey: String? = nil) {
        self.sink = sink
        self.requestMethod = requestMethod
        self.upgradeKey = upgradeKey
        state = .awaitingHead
        receivedBytes = false
        responseKeepAlive = false
        parser.reset()
    }

    /// Stops reporting to the current sink (the exchange ended, or gave up on us).
    func detach() {
        sink = nil
        resumeReading()
    }

    /// Hands the connection back to its pool after a complete exchange.
    func returnToPool(now: NIODeadline) {
        pool.release(self, now: now)
    }

    func markIdle(since now: NIODeadline) {
        sink = nil
        state = .idle(since: now)
    }

    /// The upstream request head of the exchange, written by `body` into a reused buffer.
    /// `facts` is handed to `body` rather than captured by it: a closure's captures are copied
    /// into it, and the request's facts are a dozen reference-counted values.
    func requestHead<Facts>(
        minimumCapacity: Int, _ facts: borrowing Facts, _ body: (borrowing Facts, inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        Self.reusing(&requestHeadStorage, minimumCapacity: minimumCapacity, facts, body)
    }

    /// The response head sent to the client, written by `body` into a reused buffer.
    func responseHead(minimumCapacity: Int, _ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        Self.reusing(&responseHeadStorage, minimumCapacity: minimumCapacity, ()) { _, out in body(&out) }
    }

    /// Fills `storage` with `body` and returns it for writing, keeping a reference for next
    /// time. By the next exchange NIO has written and released the previous head, so the
    /// storage is ours alone again and clearing it allocates nothing; a head still queued
    /// for a slow client is copied on write, as any shared `ByteBuffer` is. Two allocations
    /// per head saved, for at most `keptHeadCapacity` held per direction by a pooled
    /// connection (which may include the previous response's small body: process memory,
    /// never sent again). Always inlined: as a call it cost about 50 ns per exchange
    /// (`Proxied exchange` micro-benchmark).
    @inline(__always)
    private static func reusing<Facts>(
        _ storage: inout ByteBuffer, minimumCapacity: Int, _ facts: borrowing Facts,
        _ body: (borrowing Facts, inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        var buffer = storage
        storage = ByteBuffer()
        buffer.clear(minimumCapacity: minimumCapacity)
        body(facts, &buffer)
        if buffer.capacity <= keptHeadCapacity { storage = buffer }
        return buffer
    }

    func write(_ buffer: ByteBuffer) {
        outlet.write(buffer)
        unflushed = true
    }

    /// Flushes when something was written since the last flush (see `DownstreamHandler.flushClient`).
    func flush() {
        guard unflushed else { return }
        unflushed = false
        outlet.flush()
    }

    var needsFlush: Bool { unflushed }

    func flushNow() {
        flush()
    }

    func close() {
        sink = nil
        guard let context else { return }
        state = .closed
        context.close(promise: nil)
    }

    /// The client finished sending on a tunnel: the upstream gets our FIN and may still
    /// answer. Where the channel cannot half-close (a TLS upstream may not), it closes.
    func closeOutput() {
        guard let context, case .tunnel = state, !outputClosed else { return }
        outputClosed = true
        // NIO shuts the socket's output once what was flushed before is written.
        flush()
        // Both directions done: the tunnel ends (`channelInactive`).
        if inputClosed {
            context.close(promise: nil)
            return
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure { _ in self.context?.close(promise: nil) }
        context.close(mode: .output, promise: promise)
    }

    /// Backpressure from the downstream side: stop reading responses until resumed.
    func pauseReading() {
        readGate.pause()
    }

    func resumeReading() {
        if readGate.resume() { outlet.read() }
    }

    // MARK: Channel events

    package func handlerAdded(context: ChannelHandlerContext) {
        // The handler is alone in its pipeline unless TLS is in front (`UpstreamPool.connect`).
        outlet.attach(context, alone: pool.tls == nil ? self : nil)
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        outlet.detach()
    }

    // `read`, `channelRead` and `channelReadComplete` come here from the pipeline
    // (`SocketReadingHandler`), or straight from a cleartext connection's socket (`ChannelOutlet`).

    package func socketWantsRead() {
        if readGate.admit() { outlet.read() }
    }

    package func socketRead(_ bytes: ByteBuffer) {
        switch state {
        case .idle, .done:
            // A backend must not send anything between exchanges; a connection that does is
            // out of sync and can never be trusted with a request again.
            pool.remove(self)
            close()
            return
        case .closed:
            return
        case .tunnel:
            sink?.upstreamResponseBody(bytes)
        case .awaitingHead, .body:
            receivedBytes = true
            inbound.accumulate(bytes)
            processInbound()
        }
    }

    package func socketReadComplete() {
        sink?.upstreamReadComplete()
        inbound.shrinkAfterReads()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.upstreamWritabilityChanged(writable: outlet.isWritable)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        let previous = state
        state = .closed
        pool.remove(self)
        guard let sink else { return }
        self.sink = nil
        switch previous {
        case .tunnel:
            sink.upstreamResponseEnd(trailers: nil)
        case .body:
            // A response delimited by the connection closing ends here normally.
            do {
                let event = try decoder.finishOnClose()
                if case .end(let trailers) = event {
                    sink.upstreamResponseEnd(trailers: trailers)
                    return
                }
            } catch {}
            sink.upstreamFailed(GatewayError(.upstreamClosed), receivedBytes: true)
        case .awaitingHead:
            sink.upstreamFailed(GatewayError(refused ? .streamRefused : .upstreamClosed), receivedBytes: receivedBytes)
        case .idle, .done, .closed:
            break
        }
    }

    /// Upstream sockets allow half-closure (`UpstreamPool.connect`): a FIN arrives as this
    /// event. Only a tunnel goes on half-closed; anything else closes as it always did, and
    /// `channelInactive` decides what the close means.
    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if case .tunnel = state, !outputClosed, !inputClosed, sink?.upstreamTunnelInputClosed() == true {
            inputClosed = true
            return
        }
        context.close(promise: nil)
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Resets and other I/O errors surface as channelInactive right after the close.
        if error is UpstreamStreamRefused { refused = true }
        context.close(promise: nil)
    }

    // MARK: Parsing

    /// Parses as much of the response as the buffered bytes allow, reporting to the sink.
    /// The sink may release or close us from inside a callback, so state is re-read each turn.
    private func processInbound() {
        do throws(HTTPParseError) {
            while true {
                switch state {
                case .awaitingHead:
                    guard let head = try parser.parseResponseHead(&inbound, requestMethod: requestMethod) else { return }
                    if head.status == 101 {
                        // Switching protocols is valid only as the answer to the WebSocket
                        // upgrade we forwarded; anything else would leave the two ends
                        // speaking different protocols.
                        guard let upgradeKey, WebSocketUpgrade.isAccepted(by: head, key: upgradeKey) else { throw HTTPParseError.invalidStatusLine }
                        state = .tunnel
                        sink?.upstreamSwitchedProtocols(head)
                        // Bytes the upstream sent right behind its head are the tunnel's.
                        if inbound.readableBytes > 0, case .tunnel = state {
                            let early = inbound
                            inbound = ByteBuffer()
                            sink?.upstreamResponseBody(early)
                        }
                        return
                    }
                    if head.status < 200 {
                        parser.reset()
                        sink?.upstreamInformational(head)
                        continue
                    }
                    state = .body
                    responseKeepAlive = head.keepAlive
                    decoder = HTTP1BodyDecoder(framing: head.framing, limits: limits)
                    sink?.upstreamResponseHead(head)
                case .body:
                    // Bodiless framings end here without needing a byte.
                    guard let event = try decoder.next(&inbound) else { return }
                    switch event {
                    case .data(let data):
                        sink?.upstreamResponseBody(data)
                    case .end(let trailers):
                        state = .done
                        sink?.upstreamResponseEnd(trailers: trailers)
                        return
                    }
                case .idle, .done, .closed, .tunnel:
                    return
                }
            }
        } catch {
            let sink = self.sink
            close()
            sink?.upstreamFailed(GatewayError(.invalidUpstreamResponse(error)), receivedBytes: true)
        }
    }
}
