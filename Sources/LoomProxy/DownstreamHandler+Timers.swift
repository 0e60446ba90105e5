import LoomFilters
import NIOCore

/// Timeouts of a downstream connection and its exchange.
///
/// The deadlines themselves are `DownstreamDeadlines` (which one is due, in what order); this
/// files the connection in its loop's `TimerWheel` at the earliest one and acts when it fires.
/// Filing is lazy: an entry that fires earlier than needed (a deadline was cleared or moved
/// later) finds nothing due and re-files, so a keep-alive connection touches the wheel about
/// once per timeout period, not several times per request.
extension DownstreamHandler: TimerWheelOwner {
    /// Re-files the connection if its earliest deadline is now before its wheel entry.
    func syncDeadlines() {
        guard context != nil, machine.state != .closed, let next = deadlines.earliest else { return }
        if let slot = timerSlot, slot.deadline <= next { return }
        loop.setDeadline(self, at: next)
    }

    /// Called by the loop when the wheel entry fires.
    func deadlineReached(now: NIODeadline) {
        // Connecting, waiting out a retry's backoff, or waiting for the response head (or for
        // a paused filter, whose wait the same deadline bounds).
        let idleSuspended = deadlines.responseHeader != nil || machine.exchange?.upstream == .connecting
        if let due = deadlines.takeDue(at: now, idleSuspended: idleSuspended) { handle(due) }
        syncDeadlines()
    }

    private func handle(_ due: DownstreamDeadlines.Kind) {
        switch due {
        case .keepAlive:
            guard machine.state == .awaitingHead, inbound.readableBytes == 0 else { return }
            context?.close(promise: nil)
        case .requestHeader:
            guard machine.state == .awaitingHead else { return }
            rejectRequest(GatewayError(.requestHeaderTimeout))
        case .stall, .linger:
            context?.close(promise: nil)
        case .request:
            guard let exchange else { return }
            failExchange(GatewayError(exchange.deadlineFromGRPC ? .deadlineExceeded : .requestTimeout))
        case .responseHeader:
            guard machine.exchange?.responseStarted == false, let exchange else { return }
            if let index = exchange.pausedFilter, let route = exchange.route {
                // The paused filter never decided: it failed, and fails closed.
                exchange.pausedFilter = nil
                let failure = FilterFailure(
                    filter: route.filters.name(at: index), phase: "request headers",
                    error: "did not resume within the response_header timeout (\(exchange.timeouts.configured.responseHeader))")
                failExchange(GatewayError(.filterFailed(failure)))
            } else if let held = exchange.heldResponse, let route = exchange.route {
                // A filter held the response head and never let it go: it failed too.
                exchange.heldResponse = nil
                let failure = FilterFailure(
                    filter: route.filters.name(at: held.index), phase: "response headers",
                    error: "held the response past the response_header timeout (\(exchange.timeouts.configured.responseHeader))")
                failExchange(GatewayError(.filterFailed(failure)))
            } else {
                failExchange(GatewayError(.responseHeaderTimeout))
            }
        case .perTry:
            guard let progress = machine.exchange, !progress.responseStarted else { return }
            // Connected and still sending the client's body: the wait is the client's, not
            // the endpoint's. The timer starts again when the body has gone up.
            if case .connected = progress.upstream, !progress.requestComplete { return }
            failExchange(GatewayError(.perTryTimeout))
        case .retry:
            guard exchange != nil, machine.exchange?.upstream == .connecting else { return }
            acquireUpstream(forceNew: false)
        case .exchangeIdle:
            guard let context, exchange != nil else { return }
            if machine.exchange?.tunnel == true { return failExchange(GatewayError(.tunnelIdle)) }
            let kind = DownstreamStateMachine.idleTimeoutKind(
                requestComplete: machine.exchange?.requestComplete ?? true,
                readingClient: !readGate.isPaused,
                clientWritable: clientWritable)
            failExchange(GatewayError(kind))
        }
    }

    func startKeepAliveTimer(now: NIODeadline) {
        deadlines.keepAlive = now + snapshot.timeouts.idle
        syncDeadlines()
    }

    /// Armed at the first bytes of a head, not restarted by later ones.
    func startHeaderTimerIfNeeded() {
        guard deadlines.requestHeader == nil else { return }
        deadlines.requestHeader = loop.now + snapshot.timeouts.requestHeader
        syncDeadlines()
    }

    /// Closes the connection if the client takes none of our bytes for the idle timeout.
    func startStallTimer() {
        guard deadlines.stall == nil else { return }
        deadlines.stall = loop.now + snapshot.timeouts.idle
        syncDeadlines()
    }

    /// The connection is gone: its deadlines and its wheel entry with it.
    func cancelConnectionTimers() {
        deadlines = DownstreamDeadlines()
        loop.clearDeadline(self)
    }

    /// Armed once the whole request is upstream: the upstream now has `responseHeader` to
    /// answer (and, with retries, `per_try_timeout` for this attempt).
    func startResponseTimer() {
        guard let exchange, deadlines.responseHeader == nil, machine.exchange?.responseStarted == false else { return }
        let now = loop.now
        deadlines.responseHeader = now + exchange.timeouts.responseHeader
        if let perTry = exchange.upstream?.perTryTimeout { deadlines.perTry = now + perTry }
        syncDeadlines()
    }

    /// Starts the exchange's idle and total timeouts.
    func startExchangeTimers(_ exchange: Exchange, now: NIODeadline) {
        deadlines.keepAlive = nil
        deadlines.requestHeader = nil
        deadlines.lastActivity = now
        deadlines.idleTimeout = exchange.timeouts.idle
        deadlines.request = exchange.timeouts.request.map { now + $0 }
        // A gRPC call's own deadline bounds it too (the field is looked up only when present).
        if let value = exchange.head.headers.firstValue(named: "grpc-timeout"), exchange.isGRPC, let timeout = GRPC.timeout(value) {
            let deadline = now + TimeAmount(timeout)
            if deadlines.request.map({ deadline < $0 }) ?? true {
                deadlines.request = deadline
                exchange.deadlineFromGRPC = true
            }
        }
        syncDeadlines()
    }

    /// A byte moved for the exchange: the idle period starts over.
    func noteActivity() {
        deadlines.lastActivity = loop.now
    }
}
