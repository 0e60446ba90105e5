import NIOCore

/// Timeouts of a downstream connection and its exchange.
///
/// Connection timers: keep-alive idle (no request started: close quietly) and request head
/// (a head started but not finished: 408). Exchange timers: response header (request sent,
/// no response head yet: 504), idle (no byte either way: 504, or a cut once the response has
/// started) and the optional total request timeout. Each timer re-checks, when it fires, that
/// the state it guards still holds, so a late fire after a transition does nothing.
extension DownstreamHandler {
    func startKeepAliveTimer() {
        guard let context else { return }
        keepAliveTimer?.cancel()
        let idle = TimeAmount(store.current.timeouts.idle)
        keepAliveTimer = context.eventLoop.scheduleTask(in: idle) {
            guard self.machine.state == .awaitingHead, self.inbound.readableBytes == 0 else { return }
            self.context?.close(promise: nil)
        }
    }

    func startHeaderTimerIfNeeded() {
        guard headerTimer == nil, let context else { return }
        let limit = TimeAmount(store.current.timeouts.requestHeader)
        headerTimer = context.eventLoop.scheduleTask(in: limit) {
            self.headerTimer = nil
            guard self.machine.state == .awaitingHead else { return }
            self.rejectRequest(GatewayError(.requestHeaderTimeout))
        }
    }

    /// Closes the connection if the client takes none of our bytes for the idle timeout.
    func startStallTimer() {
        guard closeTimer == nil, let context else { return }
        closeTimer = context.eventLoop.scheduleTask(in: TimeAmount(store.current.timeouts.idle)) {
            self.context?.close(promise: nil)
        }
    }

    func cancelConnectionTimers() {
        keepAliveTimer?.cancel()
        keepAliveTimer = nil
        headerTimer?.cancel()
        headerTimer = nil
        closeTimer?.cancel()
        closeTimer = nil
    }

    /// Armed once the whole request is upstream: the upstream now has `responseHeader` to answer.
    func startResponseTimer() {
        guard let context, let exchange, exchange.responseTimer == nil, machine.exchange?.responseStarted == false else { return }
        let serial = exchangeSerial
        exchange.responseTimer = context.eventLoop.scheduleTask(in: TimeAmount(exchange.timeouts.responseHeader)) {
            guard self.exchangeSerial == serial, self.machine.exchange?.responseStarted == false else { return }
            self.failExchange(GatewayError(.responseHeaderTimeout))
        }
    }

    /// Idle watchdog: fires after `idle`, and re-arms for the remainder if there was activity
    /// meanwhile, so activity costs a timestamp store rather than a timer reschedule.
    func startIdleTimer() {
        guard let context, let exchange, exchange.idleTimer == nil else { return }
        let serial = exchangeSerial
        let idle = TimeAmount(exchange.timeouts.idle)
        func arm(after delay: TimeAmount) {
            self.exchange?.idleTimer = context.eventLoop.scheduleTask(in: delay) {
                guard self.exchangeSerial == serial, let exchange = self.exchange else { return }
                // Connecting and waiting for the response head have timers of their own: the
                // idle timeout must not cut them shorter than configured.
                if exchange.responseTimer != nil || self.machine.exchange?.upstream == .connecting {
                    arm(after: idle)
                    return
                }
                let quiet = NIODeadline.now() - exchange.lastActivity
                if quiet >= idle {
                    self.exchange?.idleTimer = nil
                    let kind = DownstreamStateMachine.idleTimeoutKind(
                        requestComplete: self.machine.exchange?.requestComplete ?? true,
                        readingClient: !self.readGate.isPaused,
                        clientWritable: context.channel.isWritable)
                    self.failExchange(GatewayError(kind))
                } else {
                    arm(after: idle - quiet)
                }
            }
        }
        arm(after: idle)
    }

    func startTotalTimer() {
        guard let context, let exchange, let total = exchange.timeouts.request else { return }
        let serial = exchangeSerial
        exchange.totalTimer = context.eventLoop.scheduleTask(in: TimeAmount(total)) {
            guard self.exchangeSerial == serial, self.exchange != nil else { return }
            self.failExchange(GatewayError(.requestTimeout))
        }
    }
}
