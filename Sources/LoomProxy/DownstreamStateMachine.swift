import LoomHTTP

/// The decisions of one downstream connection, as a pure state machine.
///
/// `DownstreamHandler` is the I/O shell: it parses, writes, times and connects, and at every
/// turn asks this machine what to do (`let action = machine.event(…); run(action)`). The
/// machine never does I/O, reads a clock or logs, so every rule of the connection lifecycle is
/// tested without sockets (DESIGN.md §6.1-2): when to keep a connection alive, when a local
/// answer must close it, when a failed request may be replayed, when to invite the body with
/// `100 Continue`, and what a failure does once the response has started.
///
/// Requests are strictly sequential: one exchange at a time, the next head parsed only after
/// the current response ended, so responses can never be reordered.
struct DownstreamStateMachine {
    /// Facts about a request, taken from its parsed head.
    struct Request: Equatable {
        /// The client allows the connection to stay open (version and `Connection`).
        var keepAlive: Bool
        /// A body follows the head (`Content-Length` > 0 or chunked).
        var hasBody: Bool
        /// Safe to send twice: an idempotent method (RFC 9110 §9.2.2), or a route that allows
        /// resending any (`retry_non_idempotent`).
        var resendable: Bool
        var expectsContinue: Bool
        var clientMinorVersion: Int
        /// The upstream's retry rules may send this request again after it reached an
        /// endpoint (retries on, and the method idempotent or the route opted in): its body
        /// is then kept, up to the limit, from the first attempt on.
        var mayResend = false
    }

    /// Where the upstream side of the current exchange is.
    enum UpstreamPhase: Equatable {
        case none, connecting
        case connected(reused: Bool)
        case finished
    }

    /// The progress of the exchange in flight.
    struct Exchange: Equatable {
        let request: Request
        var requestComplete: Bool
        var responseStarted = false
        var responseFraming: HeadWriter.ResponseFraming = .none
        var upstream: UpstreamPhase = .none
        /// This attempt already replayed once after a stale pooled connection.
        var staleReplayed = false
        /// The body sent so far is remembered, so the request can be sent again.
        var replayable = true
        var continueSent = false
        var failed = false
        /// The upstream switched protocols (WebSocket): bytes now pass through both ways
        /// until either side closes, and the connection ends with the exchange.
        var tunnel = false
    }

    enum State: Equatable {
        /// Between requests, or reading a request head.
        case awaitingHead
        case exchanging(Exchange)
        /// The last response is written; the connection closes once it is flushed.
        case closing
        case closed
    }

    private(set) var state: State = .awaitingHead
    /// Graceful shutdown asked us to close after the current response.
    private(set) var shuttingDown = false
    /// The client half-closed: requests it sent before are answered, then we close.
    private(set) var inputClosed = false

    var exchange: Exchange? {
        if case .exchanging(let exchange) = state { return exchange }
        return nil
    }

    /// Whether request-body bytes sent now must be remembered for a possible replay: on a
    /// reused connection (it may turn out stale) or when retries may resend the request, and
    /// only until the response starts.
    var remembersBody: Bool {
        guard let exchange, !exchange.responseStarted, exchange.replayable else { return false }
        return exchange.upstream == .connected(reused: true) || exchange.request.mayResend
    }

    /// Whether the request could still be sent again: no byte of a response went to the client
    /// and the body sent so far is remembered (or none was sent).
    var canResend: Bool {
        guard let exchange else { return false }
        return !exchange.responseStarted && exchange.replayable && exchange.upstream != .finished
    }

    /// A reused pooled connection that died before answering most likely hit the backend's
    /// keep-alive timeout as we sent: that is replayed once on a fresh connection to the same
    /// endpoint, when safe, and is not the endpoint's failure.
    func isStaleConnection(_ error: GatewayError, receivedBytes: Bool) -> Bool {
        guard let exchange, canResend else { return false }
        return error.retryable && !receivedBytes && exchange.upstream == .connected(reused: true) && !exchange.staleReplayed && exchange.request.resendable
    }

    /// A stream an HTTP/2 upstream refused unprocessed (RFC 9113 §8.7): sent again once,
    /// like a stale connection, but whatever its method, since the upstream did nothing.
    func isRefusedStream(_ error: GatewayError, receivedBytes: Bool) -> Bool {
        guard let exchange, canResend, case .streamRefused = error.kind else { return false }
        return !receivedBytes && !exchange.staleReplayed
    }

    // MARK: Starting a request

    enum StartAction: Equatable {
        /// Answer from Loom itself (route `respond`, 404, 405, 503), then `responseEnded`.
        case respondLocally(closeAfter: Bool)
        /// Lease or open an upstream connection.
        case acquireUpstream
        /// A filter paused: wait for it (`filtersResumed`), the body waiting in the buffer.
        case awaitFilters
    }

    /// A request head was parsed and routed; `paused`: a filter has yet to decide.
    mutating func requestStarted(_ request: Request, local: Bool, paused: Bool = false, bufferedBytes: Bool) -> StartAction {
        precondition(state == .awaitingHead, "request head parsed outside awaitingHead: \(state)")
        var exchange = Exchange(request: request, requestComplete: !request.hasBody)
        if paused {
            state = .exchanging(exchange)
            return .awaitFilters
        }
        return start(&exchange, local: local, bufferedBytes: bufferedBytes)
    }

    /// The exchange answers locally or goes upstream.
    private mutating func start(_ exchange: inout Exchange, local: Bool, bufferedBytes: Bool) -> StartAction {
        if local {
            exchange.responseStarted = true
            exchange.responseFraming = .contentLength
            state = .exchanging(exchange)
            return .respondLocally(closeAfter: closesAfterLocalResponse(exchange, bufferedBytes: bufferedBytes))
        }
        exchange.upstream = .connecting
        state = .exchanging(exchange)
        return .acquireUpstream
    }

    /// The paused filters decided: the answer is local, or the request goes upstream. Nil when
    /// no exchange waits for them (it ended meanwhile).
    mutating func filtersResumed(local: Bool, bufferedBytes: Bool) -> StartAction? {
        guard var exchange, exchange.upstream == .none, !exchange.responseStarted else { return nil }
        return start(&exchange, local: local, bufferedBytes: bufferedBytes)
    }

    /// Whether the exchange waits for a paused filter.
    var awaitingFilters: Bool {
        guard let exchange else { return false }
        return exchange.upstream == .none && !exchange.responseStarted
    }

    /// The handler is closing the connection outside an exchange: a head that can never be
    /// valid or was not received in time (answered first), or a partial head after the
    /// client's FIN (it can never be finished).
    mutating func closing() {
        state = .closing
    }

    // MARK: Upstream side

    enum ConnectedAction: Equatable {
        /// Send the request head, then any remembered body, then stream the rest.
        case sendRequest(inviteBody: Bool)
        /// The exchange is over (a connect finishing late): hand the connection back.
        case releaseConnection
    }

    mutating func upstreamConnected(reused: Bool) -> ConnectedAction {
        guard var exchange, exchange.upstream == .connecting else { return .releaseConnection }
        exchange.upstream = .connected(reused: reused)
        // The client asked before sending its body; the route and upstream are settled now.
        let invite = exchange.request.expectsContinue && !exchange.requestComplete && !exchange.continueSent
        if invite { exchange.continueSent = true }
        state = .exchanging(exchange)
        return .sendRequest(inviteBody: invite)
    }

    /// The whole request is upstream. Returns whether the response-header timer starts now.
    mutating func requestBodyEnded() -> Bool {
        guard var exchange else { return false }
        exchange.requestComplete = true
        state = .exchanging(exchange)
        return !exchange.responseStarted
    }

    /// The body outgrew what is kept for a replay.
    mutating func replayLimitExceeded() {
        guard var exchange else { return }
        exchange.replayable = false
        state = .exchanging(exchange)
    }

    struct ResponseHeadAction: Equatable {
        var framing: HeadWriter.ResponseFraming
        /// Say `Connection: close` and close after this response.
        var closeAfter: Bool
    }

    mutating func responseHeadReceived(upstreamFraming: HTTPBodyFraming, bufferedBytes: Bool) -> ResponseHeadAction {
        guard var exchange else { return ResponseHeadAction(framing: .none, closeAfter: true) }
        let framing = HeadWriter.responseFraming(upstream: upstreamFraming, clientMinorVersion: exchange.request.clientMinorVersion)
        exchange.responseStarted = true
        exchange.responseFraming = framing
        exchange.replayable = false
        state = .exchanging(exchange)
        // A response that starts before the request body ended (an early 413, say) ends the
        // connection, unless the body completes meanwhile: say so now, as nginx does.
        let closeAfter = !exchange.request.keepAlive || !exchange.requestComplete || shuttingDown
            || !moreRequestsMayFollow(bufferedBytes: bufferedBytes) || framing == .untilClose
        return ResponseHeadAction(framing: framing, closeAfter: closeAfter)
    }

    /// The upstream accepted the WebSocket upgrade the request asked for: its `101` goes to
    /// the client and the connection becomes a tunnel. Nothing can be resent any more, and
    /// no request follows on this connection.
    mutating func tunnelOpened() {
        guard var exchange else { return }
        exchange.responseStarted = true
        exchange.responseFraming = .none
        exchange.replayable = false
        exchange.tunnel = true
        state = .exchanging(exchange)
    }

    // MARK: Ending an exchange

    enum Next: Equatable {
        /// Keep the connection and parse the next request.
        case awaitNextRequest
        /// Flush, send our FIN, and swallow what the client still sends for a moment before
        /// closing: a request it sent meanwhile would otherwise make the kernel reset the
        /// connection and destroy the response in flight (RFC 9112 §9.6).
        case close
        /// Flush and close: the client sent all of its last request (`Connection: close`,
        /// HTTP/1.0 without keep-alive, or its FIN) and nothing after it, so nothing is on
        /// its way to reset the connection. nginx closes so too; the linger's shutdown, read
        /// and timer would be spent on nothing.
        case closeAtOnce
    }

    struct FinishAction: Equatable {
        /// Return the upstream connection to its pool (else close it, if there is one).
        var releaseUpstream: Bool
        var next: Next
    }

    /// The response is completely written (proxied, local or error).
    mutating func responseEnded(upstreamReusable: Bool, bufferedBytes: Bool) -> FinishAction {
        guard let exchange else { return FinishAction(releaseUpstream: false, next: .close) }
        let connected = if case .connected = exchange.upstream { true } else { false }
        let release = connected && exchange.requestComplete && !exchange.failed && !exchange.tunnel && upstreamReusable
        let keepAlive = exchange.request.keepAlive && exchange.requestComplete && !shuttingDown && !exchange.tunnel
            && moreRequestsMayFollow(bufferedBytes: bufferedBytes) && exchange.responseFraming != .untilClose
        state = keepAlive ? .awaitingHead : .closing
        guard !keepAlive else { return FinishAction(releaseUpstream: release, next: .awaitNextRequest) }
        let clientDone = (!exchange.request.keepAlive || inputClosed) && exchange.requestComplete && !bufferedBytes && !exchange.tunnel
        return FinishAction(releaseUpstream: release, next: clientDone ? .closeAtOnce : .close)
    }

    /// Why a failed request is sent again.
    enum Resend: Equatable {
        /// A stale pooled connection (`isStaleConnection`): once, to the same endpoint.
        case staleConnection
        /// The upstream's retry rules allowed another attempt.
        case retry
    }

    enum FailureAction: Equatable {
        /// Drop the failed connection and send the request again on a fresh one.
        case retry
        /// Answer with the error (then `responseEnded`).
        case respond(closeAfter: Bool)
        /// The response has started: cut the connection so the client cannot mistake a
        /// truncated response for a whole one. Also for a filter's reset, which gets no
        /// answer at all. No more requests are read (`closing`): what was written before
        /// (earlier pipelined responses) still goes out before the connection ends.
        case abort
        /// No exchange is in flight (a late timer or callback).
        case ignore
    }

    /// The exchange failed: upstream trouble, a timeout, or an invalid request body.
    /// `receivedBytes` says whether the upstream had sent anything at all. `resend`: the
    /// handler's decision to send the request again (honoured only while `canResend`).
    mutating func failed(_ error: GatewayError, receivedBytes: Bool, bufferedBytes: Bool, resend: Resend? = nil) -> FailureAction {
        guard var exchange else { return .ignore }
        if let resend, canResend {
            // One stale-connection replay per attempt: a retry's attempt may meet one too.
            exchange.staleReplayed = resend == .staleConnection
            exchange.upstream = .connecting
            state = .exchanging(exchange)
            return .retry
        }
        exchange.failed = true
        exchange.upstream = .finished
        // A started response cannot become an error response; a reset gets none at all.
        if exchange.responseStarted || error.resetsStream {
            state = .closing
            return .abort
        }
        exchange.responseStarted = true
        exchange.responseFraming = .contentLength
        state = .exchanging(exchange)
        return .respond(closeAfter: closesAfterLocalResponse(exchange, bufferedBytes: bufferedBytes))
    }

    // MARK: Connection events

    enum ConnectionAction: Equatable {
        case none
        case close
        /// Check whether the buffered bytes can still complete the request body (on a
        /// tunnel: pass on what is buffered, then the end of the client's bytes).
        case checkRequestBody
        /// Answer the requests the client sent before its FIN (they wait in the buffer).
        case processBuffered
    }

    /// The client sent FIN.
    mutating func inputClosed(bufferedBytes: Bool) -> ConnectionAction {
        inputClosed = true
        switch state {
        case .awaitingHead:
            // Requests pipelined before the FIN (held while the client was not reading) are
            // still answered; with nothing buffered there is nothing left to do.
            if bufferedBytes { return .processBuffered }
            state = .closing
            return .close
        case .exchanging:
            return .checkRequestBody
        case .closing, .closed:
            return .close
        }
    }

    /// Graceful shutdown: close now if idle, else after the current response.
    mutating func shutdownRequested(bufferedBytes: Bool) -> ConnectionAction {
        shuttingDown = true
        guard state == .awaitingHead, !bufferedBytes else { return .none }
        state = .closing
        return .close
    }

    /// The socket is gone. Returns the exchange that was in flight, if any.
    mutating func connectionClosed() -> Exchange? {
        let inFlight = exchange
        state = .closed
        return inFlight
    }

    // MARK: Rules

    /// Whose silence an expired idle timer means: the client's while Loom waits for body bytes
    /// it is reading for, or while the client does not take response bytes; the upstream's
    /// otherwise. Decides the status (408 or 504) and the blame in the log.
    static func idleTimeoutKind(requestComplete: Bool, readingClient: Bool, clientWritable: Bool) -> GatewayError.Kind {
        if !requestComplete && readingClient { return .clientTimeout }
        if !clientWritable { return .clientTimeout }
        return .idleTimeout
    }

    /// After the client's FIN only requests already buffered can follow.
    private func moreRequestsMayFollow(bufferedBytes: Bool) -> Bool {
        !inputClosed || bufferedBytes
    }

    /// A local answer closes the connection when the client's body was not read (the next
    /// request's position is unknown), or when nothing more may follow.
    private func closesAfterLocalResponse(_ exchange: Exchange, bufferedBytes: Bool) -> Bool {
        !exchange.requestComplete || !exchange.request.keepAlive || shuttingDown
            || !moreRequestsMayFollow(bufferedBytes: bufferedBytes)
    }
}
