import LoomUpstream
import NIOCore

/// Sending a failed request again: to the same endpoint on a fresh connection when a pooled
/// one turned out stale, or to another endpoint as the upstream's retry rules allow.
///
/// The decisions are pure and live elsewhere: `RetryPolicy` (does this failure deserve
/// another try, after what backoff), `RetryBudget` (may one more retry run now),
/// `DownstreamStateMachine.canResend` (nothing reached the client and the body is kept) and
/// `LoopContext.chooseEndpoint` (which endpoint, never one already tried while others are
/// available). This file asks them in order and carries out the answer.
extension DownstreamHandler {
    /// How a failed request goes out again.
    struct ResendPlan {
        var kind: DownstreamStateMachine.Resend
        /// The endpoint of the next attempt (a retry; a stale connection keeps its endpoint),
        /// and its half-open probe token.
        var endpoint: Int?
        var probe: Int64?
        var delay: TimeAmount
    }

    /// Records the failed attempt's verdict on its endpoint, then decides whether and how the
    /// request is sent again; nil: it is not.
    func resendPlan(after error: GatewayError, receivedBytes: Bool, _ exchange: Exchange) -> ResendPlan? {
        // Not the endpoint's fault: the pool kept a connection the backend had closed, or an
        // HTTP/2 upstream turned the stream away before looking at it.
        if machine.isStaleConnection(error, receivedBytes: receivedBytes) || machine.isRefusedStream(error, receivedBytes: receivedBytes) {
            return ResendPlan(kind: .staleConnection, endpoint: nil, delay: .zero)
        }
        exchange.recordOutcome(verdict(on: error, exchange), loop: loop)
        guard let failure = error.retryFailure else { return nil }
        return retryPlan(failure, exchange)
    }

    /// What `error` says about the current attempt's endpoint: a failure only when the
    /// attempt went out and the endpoint is to blame. A timeout that ran out while loom still
    /// waited for the client's body, or a retry still waiting out its backoff, says nothing.
    private func verdict(on error: GatewayError, _ exchange: Exchange) -> CircuitBreaker.Outcome {
        guard exchange.attemptStarted, error.blame == .upstream else { return .abandoned }
        if case .requestTimeout = error.kind, machine.exchange?.requestComplete == false { return .abandoned }
        return .failure
    }

    /// A retry of `exchange` after `failure`, when the rules, the budget and the endpoints allow.
    func retryPlan(_ failure: RetryPolicy.Failure, _ exchange: Exchange) -> ResendPlan? {
        guard machine.canResend, let upstream = exchange.upstream,
            upstream.retryPolicy.shouldRetry(failure, retriesSoFar: exchange.retries, resendable: exchange.resendable)
        else { return nil }
        let state = loop.state(of: upstream)
        // A request already retrying holds its place in the budget.
        guard exchange.countedAsRetry
            || upstream.retryBudget.allowsRetry(activeRequests: state.activeRequests, activeRetries: state.activeRetries)
        else { return nil }
        let choice = loop.chooseEndpoint(
            of: upstream, state: state, head: exchange.head, path: exchange.path, clientIP: clientIP, tried: exchange.tried)
        guard case .endpoint(let index, let probe) = choice else { return nil }
        let delay = upstream.retryPolicy.backoffMillis(retry: exchange.retries + 1, random: loop.nextRandom())
        return ResendPlan(kind: .retry, endpoint: index, probe: probe, delay: .milliseconds(delay))
    }

    /// Drops the failed attempt's connection and starts the next attempt (after the backoff,
    /// through the `retry` deadline).
    func resend(_ plan: ResendPlan, _ exchange: Exchange) {
        exchange.connection?.detach()
        exchange.connection?.close()
        exchange.connection = nil
        deadlines.responseHeader = nil
        deadlines.perTry = nil
        guard plan.kind == .retry, let index = plan.endpoint, let upstream = exchange.upstream else {
            acquireUpstream(forceNew: true)
            return
        }
        exchange.retries += 1
        exchange.countAsRetry()
        exchange.assign(index, of: upstream, probe: plan.probe)
        guard plan.delay > .zero else {
            acquireUpstream(forceNew: false)
            return
        }
        deadlines.retry = loop.now + plan.delay
        syncDeadlines()
    }
}
