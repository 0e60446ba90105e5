import LoomConfig
import LoomHTTP
import NIOCore

/// The upstream half of an exchange: getting a connection, streaming the request body up,
/// streaming the response back, and ending the exchange one way or another.
extension DownstreamHandler: UpstreamResponseSink {
    // MARK: Upstream connection

    /// Leases an idle pooled connection, or opens a new one (always new for a retry).
    func acquireUpstream(forceNew: Bool) {
        guard let exchange, let endpoint = exchange.endpoint, let upstreamIndex = exchange.upstreamIndex else { return }
        let pool = loop.pool(for: endpoint, settings: exchange.snapshot.upstreams[upstreamIndex].pool)
        exchange.upstream = .connecting
        startIdleTimer()
        if !forceNew, let connection = pool.takeIdle() {
            connected(connection, reused: true)
            return
        }
        let serial = exchangeSerial
        pool.connect(timeout: exchange.timeouts.connect, limits: exchange.snapshot.responseLimits).whenComplete { result in
            guard self.exchangeSerial == serial, self.state == .exchanging, case .connecting = self.exchange?.upstream else {
                // The exchange ended while we were connecting; keep the connection for others.
                if case .success(let connection) = result { pool.release(connection, now: .now()) }
                return
            }
            switch result {
            case .success(let connection):
                self.connected(connection, reused: false)
                self.context?.flush()
            case .failure(let error):
                self.failExchange(Self.connectError(error))
            }
        }
    }

    static func connectError(_ error: Error) -> GatewayError {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return GatewayError(.connectTimeout)
        }
        return GatewayError(.connectFailed(String(describing: error)))
    }

    /// Sends the request head (and any body bytes kept for replay) on a ready connection.
    private func connected(_ connection: UpstreamConnection, reused: Bool) {
        guard let context, let exchange else { return }
        exchange.upstream = .connected(connection)
        exchange.reusedConnection = reused
        connection.attach(self, requestMethod: exchange.head.method)

        var head = context.channel.allocator.buffer(capacity: exchange.head.headers.bytes.readableBytes + 256)
        let request = HeadWriter.RequestContext(
            target: exchange.forwardTarget, clientIP: clientIP,
            clientTrusted: exchange.snapshot.trustedProxies.contains(clientAddress),
            listenerPort: listenerPort, requestID: exchange.requestID,
            endpointAuthority: Self.authority(of: exchange.endpoint), addHeaders: exchange.addHeaders)
        HeadWriter.writeRequestHead(exchange.head, request, snapshot: exchange.snapshot, into: &head)
        connection.write(head)
        for chunk in exchange.replay { writeRequestBody(chunk, to: connection) }
        if let end = exchange.replayEnd { connection.write(end) }

        // The client asked before sending its body; the route and upstream are settled, so
        // invite it now (the `Expect` field itself was not forwarded).
        if exchange.head.expectsContinue && !exchange.requestComplete && !exchange.retried {
            context.write(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
        }
        pumpRequestBody()
        connection.flush()
        if self.exchange?.requestComplete == true { startResponseTimer() }
    }

    private static func authority(of endpoint: Endpoint?) -> String {
        switch endpoint {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix, nil: "localhost"
        }
    }

    /// Moves decoded request-body bytes from `inbound` to the upstream until the buffer is
    /// empty, the body ends, or the upstream pushes back.
    func pumpRequestBody() {
        guard let exchange, !exchange.requestComplete else { return }
        guard let connection = exchange.upstreamConnection else {
            // No upstream to send to: a local answer. Its body was never needed; the
            // connection closes after the response (see `respondLocally`).
            return
        }
        do {
            while self.exchange != nil, let event = try exchange.requestBody.next(&inbound) {
                switch event {
                case .data(let data):
                    exchange.bytesIn += data.readableBytes
                    if exchange.reusedConnection && !exchange.responseStarted {
                        exchange.recordForReplay(data)
                    }
                    writeRequestBody(data, to: connection)
                case .end(let trailers):
                    if exchange.head.framing == .chunked {
                        var out = ByteBuffer()
                        HTTP1ChunkedEncoder.writeEnd(trailers: trailers, into: &out)
                        if exchange.reusedConnection && !exchange.responseStarted && exchange.replayable {
                            exchange.replayEnd = out
                        }
                        connection.write(out)
                    }
                    exchange.requestComplete = true
                    connection.flush()
                    if !exchange.responseStarted { startResponseTimer() }
                    return
                }
                if !connection.isWritable {
                    pauseReading()
                    return
                }
            }
            // Everything buffered went upstream and the upstream can take more: read again
            // (reads may have been held while the buffer filled during the connect).
            if connection.isWritable { resumeReading() }
            // The decoder needs more bytes; after the client's end of input none will come.
            if inputClosed, self.exchange?.requestComplete == false {
                failExchange(GatewayError(.invalidRequest(.prematureEnd)))
            }
        } catch {
            failExchange(GatewayError(.invalidRequest(error)))
        }
    }

    private func writeRequestBody(_ data: ByteBuffer, to connection: UpstreamConnection) {
        guard let exchange else { return }
        if exchange.head.framing == .chunked {
            var out = ByteBuffer()
            out.reserveCapacity(data.readableBytes + 16)
            HTTP1ChunkedEncoder.writeChunk(data, into: &out)
            connection.write(out)
        } else {
            connection.write(data)
        }
    }

    // MARK: UpstreamResponseSink

    func upstreamInformational(_ head: HTTPResponseHead) {
        guard let context, let exchange else { return }
        exchange.lastActivity = .now()
        // 100 Continue was already produced locally; other 1xx (103 Early Hints) go to
        // HTTP/1.1 clients only (RFC 9110 §15.2).
        guard head.status != 100, exchange.head.minorVersion >= 1 else { return }
        var out = context.channel.allocator.buffer(capacity: head.headers.bytes.readableBytes)
        HeadWriter.writeInformationalHead(head, into: &out)
        context.write(wrapOutboundOut(out), promise: nil)
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard let context, let exchange else { return }
        exchange.responseTimer?.cancel()
        exchange.responseTimer = nil
        exchange.lastActivity = .now()
        exchange.replay = []
        exchange.replayEnd = nil
        exchange.replayable = false
        let framing = HeadWriter.responseFraming(upstream: head.framing, clientMinorVersion: exchange.head.minorVersion)
        let close = !exchange.head.keepAlive || shuttingDown || !moreRequestsMayFollow || framing == .untilClose
        var out = context.channel.allocator.buffer(capacity: head.headers.bytes.readableBytes + 128)
        HeadWriter.writeResponseHead(
            head, framing: framing, requestID: exchange.requestID, closeConnection: close,
            clientMinorVersion: exchange.head.minorVersion, snapshot: exchange.snapshot, into: &out)
        exchange.bytesOut += out.readableBytes
        exchange.status = head.status
        exchange.responseFraming = framing
        exchange.responseStarted = true
        context.write(wrapOutboundOut(out), promise: nil)
    }

    func upstreamResponseBody(_ data: ByteBuffer) {
        guard let context, let exchange else { return }
        exchange.lastActivity = .now()
        exchange.bytesOut += data.readableBytes
        if exchange.responseFraming == .chunked {
            var out = context.channel.allocator.buffer(capacity: data.readableBytes + 16)
            HTTP1ChunkedEncoder.writeChunk(data, into: &out)
            context.write(wrapOutboundOut(out), promise: nil)
        } else {
            context.write(wrapOutboundOut(data), promise: nil)
        }
        if !context.channel.isWritable {
            exchange.upstreamConnection?.pauseReading()
        }
    }

    func upstreamResponseEnd(trailers: HTTPHeaderBlock?) {
        guard let context, let exchange else { return }
        if exchange.responseFraming == .chunked {
            var out = context.channel.allocator.buffer(capacity: 64)
            HTTP1ChunkedEncoder.writeEnd(trailers: trailers, into: &out)
            exchange.bytesOut += out.readableBytes
            context.write(wrapOutboundOut(out), promise: nil)
        }
        finishExchange()
    }

    func upstreamFailed(_ error: GatewayError, receivedBytes: Bool) {
        guard let exchange else { return }
        // A reused connection that died before answering most likely hit the backend's
        // keep-alive timeout just as we sent: replay once on a fresh connection when that is
        // safe (idempotent method, body fully remembered, nothing received).
        if error.retryable, !receivedBytes, !exchange.responseStarted, exchange.reusedConnection,
            !exchange.retried, exchange.replayable, exchange.methodIsIdempotent
        {
            exchange.retried = true
            exchange.upstreamConnection?.detach()
            acquireUpstream(forceNew: true)
            return
        }
        failExchange(error)
    }

    func upstreamWritabilityChanged(writable: Bool) {
        guard writable else { return }
        exchange?.lastActivity = .now()
        resumeReading()
        pumpRequestBody()
        exchange?.upstreamConnection?.flush()
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    // MARK: Ending an exchange

    /// Ends the exchange because of `error`: an error response when nothing was sent yet,
    /// otherwise an abrupt close (the client must not mistake a cut response for a whole one).
    func failExchange(_ error: GatewayError) {
        guard let context, let exchange else { return }
        exchange.error = error
        exchange.upstreamConnection?.close()
        exchange.upstream = .finished
        if exchange.responseStarted {
            exchange.cancelTimers()
            accessLog.record(exchange, clientIP: clientIP, now: .now())
            self.exchange = nil
            state = .closed
            context.close(promise: nil)
            return
        }
        respondWithError(error)
    }

    /// Answers the current request with Loom's JSON error body.
    func respondWithError(_ error: GatewayError) {
        guard let context, let exchange else { return }
        var out = context.channel.allocator.buffer(capacity: 256)
        ErrorResponse.write(
            error, requestID: exchange.requestID, requestIDHeader: exchange.snapshot.forwarding.requestIDHeader,
            date: loop.date.current(), close: mustCloseAfterLocalResponse, headRequest: exchange.head.method == "HEAD", into: &out)
        exchange.error = error
        respondLocally(out, status: error.status)
    }

    /// Answers with a route's `respond` settings.
    func respondStatically(_ response: StaticResponse) {
        guard let context, let exchange else { return }
        var headers = response.headers.map { ($0.name, $0.value) }
        headers.append((exchange.snapshot.forwarding.requestIDHeader, exchange.requestID))
        var out = context.channel.allocator.buffer(capacity: 128 + response.body.utf8.count)
        ErrorResponse.writeSimple(
            status: response.status, headers: headers, body: response.body, date: loop.date.current(),
            close: mustCloseAfterLocalResponse,
            headRequest: exchange.head.method == "HEAD", into: &out)
        respondLocally(out, status: response.status)
    }

    /// A local answer ends the exchange at once. If the client's body has not been read, the
    /// connection closes afterwards: the next request's position is unknown otherwise.
    private var mustCloseAfterLocalResponse: Bool {
        guard let exchange else { return true }
        return !exchange.requestComplete || !exchange.head.keepAlive || shuttingDown || !moreRequestsMayFollow
    }

    private func respondLocally(_ response: ByteBuffer, status: Int) {
        guard let context, let exchange else { return }
        exchange.status = status
        exchange.bytesOut += response.readableBytes
        exchange.responseStarted = true
        exchange.responseFraming = .contentLength
        context.write(wrapOutboundOut(response), promise: nil)
        finishExchange()
    }

    /// The response is complete: release or close the upstream connection, log, then either
    /// wait for the next request or close.
    func finishExchange() {
        guard let context, let exchange else { return }
        exchange.cancelTimers()
        if let connection = exchange.upstreamConnection {
            if exchange.requestComplete && exchange.error == nil && connection.canBeReused {
                connection.detach()
                connection.returnToPool(now: .now())
            } else {
                connection.close()
            }
        }
        accessLog.record(exchange, clientIP: clientIP, now: .now())
        // After a half-close, requests pipelined before it are still answered.
        let keepAlive = exchange.head.keepAlive && exchange.requestComplete && !shuttingDown && moreRequestsMayFollow
            && exchange.responseFraming != .untilClose
        self.exchange = nil
        guard keepAlive else {
            closeGracefully()
            return
        }
        context.flush()
        state = .awaitingHead
        headParser = HTTP1HeadParser(limits: store.current.requestLimits)
        resumeReading()
        if inbound.readableBytes == 0 {
            startKeepAliveTimer()
        } else {
            processInbound()
        }
    }

    /// Flushes what was written, then closes: first our side (FIN), then, after a short
    /// linger that swallows whatever the client still sends, the socket. Closing at once
    /// could make the kernel reset the connection and destroy the response in flight.
    func closeGracefully() {
        guard let context, state != .closed else { return }
        state = .closing
        cancelConnectionTimers()
        inbound = ByteBuffer()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        promise.futureResult.whenComplete { _ in
            guard self.state != .closed, let context = self.context else { return }
            context.close(mode: .output, promise: nil)
            self.resumeReading()
            context.eventLoop.scheduleTask(in: .seconds(2)) {
                self.context?.close(promise: nil)
            }
        }
    }
}
