import LoomConfig
import LoomFilters
import LoomHTTP
import NIOCore

/// The upstream half of an exchange: getting a connection, streaming the request body up,
/// streaming the response back, and ending the exchange one way or another.
extension DownstreamHandler: UpstreamResponseSink {
    // MARK: Upstream connection

    /// Leases an idle pooled connection, or opens a new one (always new for a stale
    /// connection's replay). Starts the attempt's per-try timeout, if the upstream has one:
    /// it bounds the connect here, and starts again once the whole request is upstream.
    func acquireUpstream(forceNew: Bool) {
        guard let exchange, exchange.endpoint != nil, let upstream = exchange.upstream else { return }
        let attempt = exchange.startAttempt(now: loop.now)
        if let perTry = upstream.perTryTimeout {
            deadlines.perTry = loop.now + perTry
            syncDeadlines()
        }
        let pool: UpstreamPool
        do {
            pool = try loop.pool(of: upstream, endpoint: exchange.endpointIndex)
        } catch {
            failExchange(GatewayError(.connectFailed("TLS to upstream \(upstream.name): \(error)")))
            return
        }
        if !forceNew, let connection = pool.takeIdle() {
            connected(connection, reused: true)
            return
        }
        let serial = exchangeSerial
        pool.connect(timeout: exchange.timeouts.configured.connect, limits: exchange.snapshot.responseLimits).whenComplete { result in
            switch result {
            case .success(let connection):
                guard self.exchangeSerial == serial, self.exchange?.attempt == attempt else {
                    // The exchange ended, or moved on to another attempt, while we were
                    // connecting; keep the connection for others.
                    pool.release(connection, now: self.loop.now)
                    return
                }
                // A stream of an HTTP/2 connection counts as reused: the connection may go
                // (GOAWAY) or turn it away just as it is sent, so its body is kept for a replay.
                self.connected(connection, reused: connection.endpointSpeaksHTTP2)
                self.flushClient()
            case .failure(let error):
                guard self.exchangeSerial == serial, self.exchange?.attempt == attempt else { return }
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
        guard context != nil, let exchange, case .sendRequest(let inviteBody) = machine.upstreamConnected(reused: reused) else {
            connection.returnToPool(now: loop.now)
            return
        }
        exchange.connection = connection
        // On an HTTP/2 stream only an extended CONNECT (RFC 8441) reads as a handshake
        // (`HTTP2RequestTranslator`): NIOHTTP2 refuses the upgrade fields themselves. An
        // HTTP/2 upstream gets the handshake as a plain GET (RFC 8441 upstream is not built).
        let upgradeKey = connection.endpointSpeaksHTTP2 ? nil : exchange.webSocketKey
        connection.attach(self, requestMethod: exchange.head.method, upgradeKey: upgradeKey)

        let request = requestContext(for: exchange, to: connection, upgrade: upgradeKey != nil)
        // The head and the context are lent down to the writer (`requestHead`,
        // `ByteBuffer.writeHead`), never captured by a closure on the way: a closure copies
        // a struct it captures, a reference count per field.
        let head = connection.requestHead(minimumCapacity: exchange.head.headers.bytes.readableBytes + HeadWriter.requestHeadSlack, exchange.head) { head, out in
            HeadWriter.writeRequestHead(head, request, snapshot: exchange.snapshot, into: &out)
        }
        connection.write(head)
        for chunk in exchange.replay { writeRequestBody(chunk, to: connection) }
        if let end = exchange.replayEnd { connection.write(end) }

        if inviteBody {
            // The `Expect` field itself is not forwarded: Loom speaks for the upstream.
            send(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"))
        }
        if machine.exchange?.requestComplete == true {
            if machine.requestBodyEnded() { startResponseTimer() }
        } else {
            pumpRequestBody()
        }
        loop.flushSoon(connection)
    }

    /// What the upstream request head is written with, besides the client's head.
    private func requestContext(for exchange: Exchange, to connection: UpstreamConnection, upgrade: Bool) -> HeadWriter.RequestContext {
        HeadWriter.RequestContext(
            target: exchange.forwardTarget, clientIP: clientIP,
            clientTrusted: exchange.snapshot.trustedProxies.contains(clientAddress),
            listenerPort: listenerPort, requestID: exchange.requestID,
            endpointAuthority: exchange.endpointAuthority, rules: exchange.requestRules ?? exchange.route?.requestHeaders ?? .none,
            authority: exchange.filterAuthorityOverride, scheme: tls == nil ? "http" : "https", clientIdentity: tls?.identityField,
            upgrade: upgrade, http2: isHTTP2Stream, http2Upstream: connection.endpointSpeaksHTTP2,
            // A transformed body's length is known only at its end.
            chunkedBody: exchange.requestTransforms != nil)
    }

    /// Moves decoded request-body bytes from `inbound` to the upstream until the buffer is
    /// empty, the body ends, or the upstream pushes back.
    func pumpRequestBody() {
        guard let exchange, let progress = machine.exchange else { return }
        if progress.tunnel { return pumpTunnel(exchange) }
        guard !progress.requestComplete, !exchange.requestEndHeld else { return }
        // No connection yet: the body waits in `inbound` (reads pause above the watermark).
        guard let connection = exchange.connection, case .connected = progress.upstream else {
            if machine.inputClosed { failIfBodyCannotComplete(exchange) }
            return
        }
        do {
            while let event = try exchange.requestBody.next(&inbound) {
                switch event {
                case .data(let received):
                    exchange.bytesIn += received.readableBytes
                    guard let data = transformed(received, endOfStream: false, by: exchange.requestTransforms) else { return }
                    sendRequestBody(data, to: connection, exchange)
                case .end(let trailers):
                    if let transforms = exchange.requestTransforms {
                        // The filters see the trailers; loom then drops them (`endRequestBody`).
                        endTransformedBody(.request, trailers: Self.fields(trailers).map { transforms.run(trailers: $0) }, exchange)
                    } else {
                        endRequestBody(to: connection, exchange)
                    }
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
            if machine.inputClosed { failExchange(GatewayError(.invalidRequest(.prematureEnd))) }
        } catch {
            failExchange(GatewayError(.invalidRequest(error)))
        }
    }

    /// The request body has gone upstream: its last chunk, then the wait for the response.
    func endRequestBody(to connection: UpstreamConnection, _ exchange: Exchange) {
        if exchange.sendsChunked {
            // Request trailers are dropped, as nginx does: they would otherwise
            // carry forwarding or hop-by-hop fields past the rules the head obeys.
            var out = ByteBuffer()
            HTTP1ChunkedEncoder.writeEnd(trailers: nil, into: &out)
            if machine.remembersBody { exchange.replayEnd = out }
            connection.write(out)
        }
        // With the rest of the turn's writes (`LoopTick`), as the body's other bytes go.
        loop.flushSoon(connection)
        if machine.requestBodyEnded() { startResponseTimer() }
    }

    /// Request body bytes (after the filters) upstream, remembered for a replay while one is
    /// possible; none when a transform holds them back.
    func sendRequestBody(_ data: ByteBuffer, to connection: UpstreamConnection, _ exchange: Exchange) {
        guard data.readableBytes > 0 else { return }
        if machine.remembersBody && !exchange.remember(data) { machine.replayLimitExceeded() }
        writeRequestBody(data, to: connection)
    }

    /// After the client's FIN, with no upstream yet: fail now unless `inbound` already holds
    /// the rest of the body (it is then sent once the upstream is connected).
    private func failIfBodyCannotComplete(_ exchange: Exchange) {
        do {
            if try bufferedBodyEnd(of: exchange) == nil { failExchange(GatewayError(.invalidRequest(.prematureEnd))) }
        } catch {
            failExchange(GatewayError(.invalidRequest(error)))
        }
    }

    /// When `inbound` already holds the rest of the request body: the buffer positioned just
    /// after it (probed on copies; nothing is consumed). Nil when more bytes are needed.
    func bufferedBodyEnd(of exchange: Exchange) throws(HTTPParseError) -> ByteBuffer? {
        var probe = exchange.requestBody
        var bytes = inbound
        while let event = try probe.next(&bytes) {
            if case .end = event { return bytes }
        }
        return nil
    }

    private func writeRequestBody(_ data: ByteBuffer, to connection: UpstreamConnection) {
        guard let exchange else { return }
        if exchange.sendsChunked {
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
        noteActivity()
        // 100 Continue was produced locally; other 1xx (103 Early Hints) go to HTTP/1.1
        // clients only (RFC 9110 §15.2).
        guard head.status != 100, exchange.head.minorVersion >= 1 else { return }
        var out = context.channel.allocator.buffer(capacity: head.headers.bytes.readableBytes + HeadWriter.informationalHeadSlack)
        HeadWriter.writeInformationalHead(head, into: &out)
        send(out)
        // Interim responses obey the same backpressure as bodies: a backend cannot flood a
        // client that is not reading.
        if !clientWritable { exchange.connection?.pauseReading() }
    }

    func upstreamResponseHead(_ head: consuming HTTPResponseHead) {
        guard let exchange else { return }
        deadlines.responseHeader = nil
        deadlines.perTry = nil
        noteActivity()
        if let started = exchange.attemptStartedAt, loop.metrics != nil { exchange.upstreamLatency = loop.now - started }
        exchange.recordOutcome(head.status >= 500 ? .failure : .success, loop: loop)
        if exchange.upstream?.retryPolicy.retriesStatus(head.status) == true, let plan = retryPlan(.status(head.status), exchange) {
            // This response never reaches the client: the request goes to another endpoint.
            _ = machine.failed(GatewayError(.retriedStatus(head.status)), receivedBytes: true, bufferedBytes: bufferedBytes, resend: .retry)
            resend(plan, exchange)
            return
        }
        exchange.forgetReplay()
        if exchange.snapshot.configuration.xSendfile.enabled, serveSendfile(head, exchange) { return }
        respond(with: head, responseFilters(for: head, exchange, fromUpstream: true), exchange)
    }

    /// The response filters' verdict on an upstream's response head.
    func responseFilters(for head: HTTPResponseHead, _ exchange: Exchange, fromUpstream: Bool) -> ResponseFiltering {
        let fields = head.headers
        return responseFilters(
            status: head.status, hasBody: head.framing != .none, exchange, fromUpstream: fromUpstream, lookup: { fields.firstValue(named: $0) },
            fields: { (0..<fields.count).map { HeaderPair(name: fields.name(at: $0), value: fields.value(at: $0)) } })
    }

    /// Goes on with the upstream's response head as the response filters decided: sends it
    /// (with the first body bytes), holds it for a filter, or replaces it.
    private func respond(with head: consuming HTTPResponseHead, _ filtered: ResponseFiltering, _ exchange: Exchange, heldEvents: [HeldResponse.Event] = []) {
        switch filtered {
        case .hold(let index, let pause, let response):
            hold(head, response, at: index, pause, exchange, events: heldEvents)
        case .replace(let answer):
            replaceResponse(with: answer, exchange)
        case .fail(let error):
            failExchange(error)
        case .send(let rules, let transforms):
            var head = head
            if transforms != nil {
                // A transformed body's length is known only at its end: chunked (or until close).
                head.framing = .chunked
                exchange.responseTransforms = transforms
            }
            let action = machine.responseHeadReceived(upstreamFraming: head.framing, bufferedBytes: bufferedBytes)
            exchange.status = head.status
            // Written with the first body bytes (or at the end of the read batch), so a small
            // response leaves as one buffer: one write through the pipeline instead of two.
            heldHead = HeldHead(head: head, action: action, rules: rules)
        }
    }

    // MARK: A response held by a filter

    /// Filter `index` holds the response head: the upstream is not read meanwhile (what it
    /// already sent waits in `HeldResponse.events`), and the wait is bounded by the route's
    /// `response_header` timeout.
    private func hold(
        _ head: HTTPResponseHead, _ response: FilterResponse, at index: Int, _ pause: FilterResponsePause, _ exchange: Exchange,
        events: [HeldResponse.Event]
    ) {
        let held = HeldResponse(head: head, response: response, index: index)
        held.events = events
        exchange.heldResponse = held
        exchange.connection?.pauseReading()
        deadlines.responseHeader = loop.now + exchange.timeouts.responseHeader
        syncDeadlines()
        let serial = exchangeSerial
        pause.start(FilterResponseResumer(onLoopOnce { handler, next in handler.responseResumed(serial: serial, index: index, next: next) }))
    }

    /// Held filter `index` decided (`next`): the earlier filters run, then the response goes
    /// on (or is held again, or replaced), followed by what arrived while it was held.
    private func responseResumed(serial: Int, index: Int, next: (inout FilterResponse) throws -> Void) {
        guard exchangeSerial == serial, let exchange, let held = exchange.heldResponse, held.index == index,
              let route = exchange.route, let request = exchange.filterRequest
        else { return }
        exchange.heldResponse = nil
        deadlines.responseHeader = nil
        syncDeadlines()
        var response = held.response
        let verdict = route.filters.resumeResponse(&response, request: request, at: index, with: next)
        respond(with: held.head, responseFiltered(verdict, response, exchange), exchange, heldEvents: held.events)
        if exchange.heldResponse == nil {
            for event in held.events {
                guard self.exchange === exchange, exchange.connection != nil else { break }
                switch event {
                case .body(let bytes): upstreamResponseBody(bytes)
                case .end(let trailers): upstreamResponseEnd(trailers: trailers)
                }
            }
            if self.exchange === exchange {
                // A head with nothing after it yet (a long poll, an event stream) goes now.
                sendHeldHead()
                if clientWritable { exchange.connection?.resumeReading() }
            }
        }
        // Not in a read batch: nothing else flushes what this wrote.
        flushClient()
    }

    /// A filter replaced the upstream's response with its own answer: the upstream's is
    /// dropped with its connection, and the answer goes out as a filter's answer does.
    private func replaceResponse(with answer: LocalResponse, _ exchange: Exchange) {
        if let connection = exchange.connection {
            connection.detach()
            connection.close()
            exchange.connection = nil
        }
        exchange.filterAnswered = true
        let response = StaticResponse(status: answer.status, headers: answer.headers, body: answer.body)
        let action = machine.responseHeadReceived(upstreamFraming: .contentLength(answer.body.utf8.count), bufferedBytes: bufferedBytes)
        writeStaticResponse(response, closeAfter: action.closeAfter)
        finishExchange()
    }

    /// Keeps an event of the upstream's response while a filter holds its head; false when
    /// there is no such hold. Reading stops at the hold, so this is at most what one read
    /// batch had parsed; past `heldBytesLimit` the exchange fails rather than grow.
    private func keptWhileHeld(_ event: HeldResponse.Event, _ exchange: Exchange) -> Bool {
        guard let held = exchange.heldResponse else { return false }
        held.events.append(event)
        if case .body(let bytes) = event { held.bytes += bytes.readableBytes }
        if held.bytes > Self.heldBytesLimit, let route = exchange.route {
            let failure = FilterFailure(filter: route.filters.name(at: held.index), phase: "response headers", error: "held more than \(Self.heldBytesLimit) bytes of the response")
            exchange.heldResponse = nil
            failExchange(GatewayError(.filterFailed(failure)))
        }
        return true
    }

    static let heldBytesLimit = 4 * 1024 * 1024

    /// An upstream answer naming a file (`X-Sendfile: /path`, `X-Accel-Redirect: /uri`) is
    /// replaced by that file, served as a `static` route serves one (ranges, conditionals),
    /// with the upstream's own fields (Content-Type, Content-Disposition, Cache-Control,
    /// cookies) but not its framing or validators. The upstream's body is not read: its
    /// connection is closed. Returns false when the answer names no file.
    private func serveSendfile(_ head: HTTPResponseHead, _ exchange: Exchange) -> Bool {
        let sendfile = head.headers.firstValue(named: "x-sendfile")
        let accelRedirect = head.headers.firstValue(named: "x-accel-redirect")
        guard sendfile != nil || accelRedirect != nil else { return false }
        if let connection = exchange.connection {
            connection.detach()
            connection.close()
            exchange.connection = nil
        }
        let request = exchange.head
        let settings = exchange.snapshot.configuration.xSendfile
        switch FileServer.lookup(sendfile: sendfile, accelRedirect: accelRedirect, settings: settings) {
        case .file(let path):
            let directories = settings.roots + settings.accelMappings.map(\.directory)
            guard var answer = FileServer.answer(path, within: directories, method: request.method, field: { request.headers.firstValue(named: $0) }) else {
                failExchange(GatewayError(.fileNotFound))
                return true
            }
            answer.headers = Self.sendfileFields(head, requestIDHeader: exchange.snapshot.requestIDHeaderLowercased, file: answer.headers)
            let action = machine.responseHeadReceived(upstreamFraming: answer.body.map { .contentLength($0.range.count) } ?? .none, bufferedBytes: bufferedBytes)
            writeFileResponse(answer, closeAfter: action.closeAfter)
        case .notFound, .directory:
            failExchange(GatewayError(.fileNotFound))
        case .forbidden:
            failExchange(GatewayError(.fileForbidden))
        }
        return true
    }

    /// The fields of an X-Sendfile answer: the upstream's, less its framing, hop-by-hop
    /// (those its `Connection` names too) and X-Sendfile fields and what describes its own
    /// body (validators, ranges), then the file's (its Content-Type only when the upstream
    /// gave none). `requestIDHeader` is lower-case.
    static func sendfileFields(_ head: HTTPResponseHead, requestIDHeader: String, file: [HeaderPair]) -> [HeaderPair] {
        let replaced: Set<String> = [
            "content-length", "transfer-encoding", "x-sendfile", "x-accel-redirect", "etag", "last-modified", "accept-ranges", "content-range",
            "date", requestIDHeader,
        ]
        let upstream = head.headers
        var fields: [HeaderPair] = []
        var hasType = false
        for index in 0..<upstream.count {
            if upstream.knownName(at: index)?.isHopByHop == true { continue }
            let name = upstream.name(at: index)
            let lowered = name.lowercased()
            if replaced.contains(lowered) || lowered.hasPrefix("x-accel-") || head.connectionTokens.contains(lowered) { continue }
            if lowered == "content-type" { hasType = true }
            fields.append(HeaderPair(name: name, value: upstream.value(at: index)))
        }
        return fields + file.filter { !(hasType && $0.name == "Content-Type") }
    }

    /// Body bytes up to this size are copied behind the held head rather than written apart
    /// (small enough that the buffer usually stays within `UpstreamConnection.keptHeadCapacity`).
    static let mergedBodyLimit = 2 * 1024

    /// Writes the response head held back by `upstreamResponseHead`, if any, followed by
    /// `body` (already framed for the client: the caller decides what fits).
    func sendHeldHead(with body: ByteBuffer? = nil) {
        guard let held = heldHead.take() else { return }
        guard let exchange else { return }
        let date = loop.date.current()
        let capacity = held.head.headers.bytes.readableBytes + HeadWriter.responseHeadSlack + (body?.readableBytes ?? 0)
        let rules = held.rules
        func write(into out: inout ByteBuffer) {
            HeadWriter.writeResponseHead(
                held.head, framing: held.action.framing, requestID: exchange.requestID, closeConnection: held.action.closeAfter,
                clientMinorVersion: exchange.head.minorVersion, date: date, snapshot: exchange.snapshot,
                rules: rules, upstreamHTTP2: exchange.connection?.endpointSpeaksHTTP2 ?? false, into: &out)
            exchange.bytesOut += out.readableBytes
            if let body { writeResponseBody(body, framing: held.action.framing, into: &out) }
        }
        // The sink is detached before an exchange drops its connection, so there is one; a
        // fresh buffer keeps the head (and body) safe if that ever changes.
        if let connection = exchange.connection {
            send(connection.responseHead(minimumCapacity: capacity, write))
        } else {
            var out = ByteBuffer()
            out.reserveCapacity(capacity)
            write(into: &out)
            send(out)
        }
    }

    /// Body bytes as the client receives them: re-chunked, or as they are.
    private func writeResponseBody(_ data: ByteBuffer, framing: HeadWriter.ResponseFraming, into out: inout ByteBuffer) {
        if framing == .chunked { HTTP1ChunkedEncoder.writeChunk(data, into: &out) } else { out.writeImmutableBuffer(data) }
    }

    func upstreamResponseBody(_ received: ByteBuffer) {
        guard let exchange else { return }
        if exchange.heldResponse != nil, keptWhileHeld(.body(received), exchange) { return }
        // A head still held arrived in this same read batch, which noted the activity already.
        if heldHead == nil { noteActivity() }
        guard let data = transformed(received, endOfStream: false, by: exchange.responseTransforms) else { return }
        sendResponseBody(data, exchange)
    }

    /// `data` (as the client receives it, framing aside) to the client, with the held head
    /// if it is still held.
    private func sendResponseBody(_ data: ByteBuffer, _ exchange: Exchange) {
        guard let context else { return }
        // A transform holding bytes back for now: nothing to send yet (and an empty chunk
        // would end a chunked body).
        guard data.readableBytes > 0 else { return }
        exchange.bytesOut += data.readableBytes
        let framing = machine.exchange?.responseFraming ?? .none
        if heldHead != nil && data.readableBytes <= Self.mergedBodyLimit {
            sendHeldHead(with: data)
        } else if framing == .chunked {
            sendHeldHead()
            var out = context.channel.allocator.buffer(capacity: data.readableBytes + 16)
            writeResponseBody(data, framing: framing, into: &out)
            send(out)
        } else {
            sendHeldHead()
            send(data)
        }
        if !clientWritable {
            exchange.connection?.pauseReading()
        }
    }

    func upstreamResponseEnd(trailers: HTTPHeaderBlock?) {
        guard let context, let exchange else { return }
        if exchange.heldResponse != nil, keptWhileHeld(.end(trailers), exchange) { return }
        guard let transforms = exchange.responseTransforms else {
            sendHeldHead()
            if machine.exchange?.responseFraming == .chunked {
                var out = context.channel.allocator.buffer(capacity: 64)
                // The upstream's trailer fields minus any hop-by-hop ones (they describe the
                // upstream connection, not this one).
                HTTP1ChunkedEncoder.writeEnd(trailers: trailers, where: { trailers?.knownName(at: $0)?.isHopByHop != true }, into: &out)
                exchange.bytesOut += out.readableBytes
                send(out)
            }
            finishExchange()
            return
        }
        endTransformedBody(.response, trailers: Self.fields(trailers).map { transforms.run(trailers: $0) }, exchange)
    }

    /// The last bytes of a transformed response body, its trailers as the filters left them,
    /// and the end of the exchange.
    func endResponse(_ rest: ByteBuffer, trailers: [HeaderPair]?, _ exchange: Exchange) {
        guard let context else { return }
        sendResponseBody(rest, exchange)
        sendHeldHead()
        if machine.exchange?.responseFraming == .chunked {
            var out = context.channel.allocator.buffer(capacity: 64)
            HeadWriter.writeLastChunk(fields: trailers ?? [], into: &out)
            exchange.bytesOut += out.readableBytes
            send(out)
        }
        finishExchange()
    }

    func upstreamFailed(_ error: GatewayError, receivedBytes: Bool) {
        failExchange(error, receivedBytes: receivedBytes)
    }

    func upstreamWritabilityChanged(writable: Bool) {
        guard writable else { return }
        if exchange != nil { noteActivity() }
        resumeReading()
        pumpRequestBody()
        exchange?.connection?.flush()
    }

    func upstreamReadComplete() {
        sendHeldHead()
        loop.flushSoon(self)
    }

    // MARK: Ending an exchange

    /// Ends the exchange because of `error`, as the machine decides: a replay on a fresh
    /// connection, an error response, or (once the response has started, or when a filter
    /// asked for a reset) a cut connection: on HTTP/2, the stream's channel closes, which
    /// resets the stream.
    func failExchange(_ error: GatewayError, receivedBytes: Bool = true) {
        guard let context, let exchange else { return }
        sendHeldHead()
        let plan = resendPlan(after: error, receivedBytes: receivedBytes, exchange)
        switch machine.failed(error, receivedBytes: receivedBytes, bufferedBytes: bufferedBytes, resend: plan?.kind) {
        case .ignore:
            return
        case .retry:
            if let plan { resend(plan, exchange) }
        case .respond(let closeAfter):
            exchange.error = error
            exchange.connection?.close()
            exchange.connection = nil
            writeErrorResponse(error, closeAfter: closeAfter)
            finishExchange()
        case .abort:
            exchange.error = error
            exchange.connection?.close()
            deadlines.exchangeEnded()
            recordEnd(of: exchange, now: loop.now)
            self.exchange = nil
            if isHTTP2Stream {
                // NIOHTTP2 announces a stream once the read that opened it is over: a stream
                // reset inside that read (a filter's, say) would end before it began.
                context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
            } else {
                // The end of the connection is the client's sign: flushed first, so earlier
                // pipelined responses are not lost to a reset, then FIN and a linger.
                closeGracefully()
            }
        }
    }

    /// Writes Loom's JSON error body for the current request.
    func writeErrorResponse(_ error: GatewayError, closeAfter: Bool) {
        guard let context, let exchange else { return }
        if case .filterRejected(let rejection) = error.kind, let answer = rejection.answer {
            // A filter's own answer: as it wrote it, and final (no response filters).
            exchange.error = error
            exchange.filterAnswered = true
            writeStaticResponse(StaticResponse(status: answer.status, headers: answer.headers, body: answer.body), closeAfter: closeAfter)
            return
        }
        var out = context.channel.allocator.buffer(capacity: 256)
        ErrorResponse.write(
            error, requestID: exchange.requestID.text, requestIDHeader: exchange.snapshot.forwarding.requestIDHeader,
            date: loop.date.current(), close: closeAfter, headRequest: exchange.head.method == "HEAD",
            grpc: exchange.isGRPC, added: filterFields(forError: error, exchange), into: &out)
        exchange.error = error
        writeLocalResponse(out, status: error.status)
    }

    /// The fields the route's filters add to loom's own error response (a browser reads a
    /// 429 only with CORS fields): added after loom's, never removing them; the route's own
    /// response rules do not apply to error responses, and a filter that failed is not asked
    /// again.
    private func filterFields(forError error: GatewayError, _ exchange: Exchange) -> [HeaderPair] {
        guard let route = exchange.route, let request = exchange.filterRequest, !exchange.filterAnswered else { return [] }
        if case .filterFailed = error.kind { return [] }
        var response = FilterResponse(status: error.status, changes: request.responseChanges) { _ in nil }
        guard route.filters.responseHeaders(&response, request: request) == .continue else { return [] }
        return response.changes.rules.set + response.changes.rules.add
    }

    /// What the response filters decided about a response head.
    enum ResponseFiltering {
        /// Send it with these header rules, its body through these transforms.
        case send(PreparedHeaderRules, BodyTransforms?)
        /// Filter `index` holds it (only an upstream's response).
        case hold(index: Int, FilterResponsePause, FilterResponse)
        /// A filter's answer replaces it (only an upstream's response).
        case replace(LocalResponse)
        /// A filter failed on it: the exchange fails (only an upstream's response).
        case fail(GatewayError)
    }

    /// The response header rules for a response with `status` whose received fields
    /// `lookup` reads: the route's, with the filters' changes when they make any; and the
    /// filters' body transforms, if they asked for the body (never without `hasBody`).
    /// (`lookup` and `fields` are built only when filters run: a response without them
    /// allocates nothing; a closure that captures is a heap allocation.)
    func responseFilters(
        status: Int, hasBody: Bool, _ exchange: Exchange, fromUpstream: Bool = false, lookup: @autoclosure () -> @Sendable (String) -> String?,
        fields: @autoclosure () -> @Sendable () -> [HeaderPair]
    ) -> ResponseFiltering {
        guard let route = exchange.route, let request = exchange.filterRequest, !exchange.filterAnswered else {
            return .send(exchange.route?.responseHeaders ?? .none, nil)
        }
        // Filters see the response as the route's own rules will leave it, so a field the
        // route sets counts as present (security_headers adds no second one).
        let received = lookup()
        let routeChanges = HeaderChanges(route.config.responseHeaders)
        var response = FilterResponse(status: status, hasBody: hasBody, changes: request.responseChanges, fields: fields()) {
            routeChanges.value($0, received: received($0))
        }
        response.upstreamAddress = exchange.endpoint?.description
        response.canBeHeld = fromUpstream
        let started = loop.metrics == nil ? nil : NIODeadline.now()
        let verdict = route.filters.responseHeaders(&response, request: request)
        if let started { exchange.filterNanoseconds += (NIODeadline.now() - started).nanoseconds }
        return responseFiltered(verdict, response, exchange)
    }

    /// What the response phase's verdict means for the response head.
    private func responseFiltered(_ verdict: FilterChain.ResponseVerdict, _ response: FilterResponse, _ exchange: Exchange) -> ResponseFiltering {
        let routeRules = exchange.route?.responseHeaders ?? .none
        switch verdict {
        case .failed(let failure):
            // An upstream's response has not left yet: the failure is answered (500). Loom's
            // own answer goes out as it is, the failure logged.
            if response.canBeHeld { return .fail(GatewayError(.filterFailed(failure))) }
            exchange.error = GatewayError(.filterFailed(failure))
            return .send(routeRules, nil)
        case .respond(let answer):
            return .replace(answer)
        case .reset(let rejection):
            return .fail(GatewayError(.filterRejected(rejection)))
        case .paused(let index, let pause):
            return .hold(index: index, pause, response)
        case .continue:
            guard let route = exchange.route else { return .send(routeRules, nil) }
            var changes = response.changes
            let transforms = response.bodyTransforms.isEmpty ? nil : response.bodyTransforms
            // The received length no longer describes a transformed body.
            if transforms != nil { changes.remove("Content-Length") }
            let rules = changes.isEmpty ? routeRules : PreparedHeaderRules(changes.applied(to: route.config.responseHeaders))
            return .send(rules, transforms)
        }
    }

    /// Writes a route's `respond` or `redirect` answer, or a filter's, with the response
    /// filters' changes.
    func writeStaticResponse(_ response: StaticResponse, closeAfter: Bool) {
        guard let context, let exchange else { return }
        let headers = localFields(response.headers, status: response.status, exchange)
        var out = context.channel.allocator.buffer(capacity: 128 + response.body.utf8.count)
        ErrorResponse.writeSimple(
            status: response.status, headers: headers, body: response.body, date: loop.date.current(),
            close: closeAfter, headRequest: exchange.head.method == "HEAD", into: &out)
        writeLocalResponse(out, status: response.status)
    }

    /// The fields of an answer loom writes itself (`respond`, `redirect`, a filter's, a file):
    /// `fields` with the route's response rules and the response filters' changes, then the
    /// request id. Loom writes the body whole, so no filter transforms it.
    func localFields(_ fields: [HeaderPair], status: Int, _ exchange: Exchange) -> [(String, String)] {
        // Loom's own answer: never held or replaced, so the filters only change its fields.
        let filtered = responseFilters(status: status, hasBody: false, exchange, lookup: { name in fields.first { $0.hasName(name) }?.value }, fields: { fields })
        guard case .send(let rules, _) = filtered else { preconditionFailure("a local answer was held or replaced") }
        var headers = fields.filter { field in !rules.dropped.contains { field.hasName($0) } }.map { ($0.name, $0.value) }
        headers += rules.appended.map { ($0.name, $0.value) }
        headers.append((exchange.snapshot.forwarding.requestIDHeader, exchange.requestID.text))
        return headers
    }

    func writeLocalResponse(_ response: ByteBuffer, status: Int) {
        guard context != nil, let exchange else { return }
        exchange.status = status
        exchange.bytesOut += response.readableBytes
        send(response)
    }

    /// The response is complete: release or close the upstream connection, log, then either
    /// wait for the next request or close — as the machine decides.
    func finishExchange() {
        guard context != nil, let exchange else { return }
        deadlines.exchangeEnded()
        // The endpoint and the loop's counts are free of this request now, even if something
        // still holds the exchange.
        exchange.release()
        let upstreamReusable = exchange.connection?.canBeReused ?? false
        let action = machine.responseEnded(upstreamReusable: upstreamReusable, bufferedBytes: bufferedBytes)
        let now = loop.now
        if let connection = exchange.connection {
            if action.releaseUpstream {
                connection.detach()
                connection.returnToPool(now: now)
            } else {
                connection.close()
            }
        }
        recordEnd(of: exchange, now: now)
        self.exchange = nil
        switch action.next {
        case .close:
            closeGracefully()
        case .closeAtOnce:
            // An HTTP/2 stream's end is the stream's, not the connection's: it keeps its way.
            closeGracefully(linger: isHTTP2Stream)
        case .awaitNextRequest:
            loop.flushSoon(self)
            headParser.limits = snapshot.requestLimits
            if clientWritable { resumeReading() }
            if inbound.readableBytes == 0 {
                startKeepAliveTimer(now: now)
            } else {
                processInbound()
            }
        }
    }

    /// The exchange is over: its access-log line, and the filters' log phase.
    func recordEnd(of exchange: Exchange, now: NIODeadline) {
        accessLog.record(exchange, clientIP: clientIP, http2: isHTTP2Stream, now: now)
        loop.metrics?.record(exchange, now: now)
        guard let request = exchange.filterRequest, let route = exchange.route else { return }
        let entry = FilterLogEntry(
            status: exchange.status, durationNanoseconds: (now - exchange.started).nanoseconds, bytesIn: exchange.bytesIn, bytesOut: exchange.bytesOut,
            upstreamAddress: exchange.endpoint?.description)
        route.filters.log(entry, request: request)
    }

    /// How long a connection that sent its FIN swallows what the client still sends before
    /// the socket is closed.
    static let linger = TimeAmount.seconds(2)

    /// Flushes what was written, then closes: first our side (FIN), then, after a short
    /// linger that swallows whatever the client still sends, the socket. Closing at once
    /// could make the kernel reset the connection and destroy the response in flight, unless
    /// the client is known to send nothing more (`linger: false`, `Next.closeAtOnce`).
    func closeGracefully(linger: Bool = true) {
        guard let context else { return }
        cancelConnectionTimers()
        inbound = ByteBuffer()
        // Whatever happens to the flush, the socket is gone within the idle timeout: a client
        // that never reads must not hold the connection and its unsent bytes forever.
        startStallTimer()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        promise.futureResult.whenComplete { _ in
            guard self.machine.state != .closed, let context = self.context else { return }
            guard linger else { return context.close(promise: nil) }
            context.close(mode: .output, promise: nil)
            self.resumeReading()
            self.deadlines.linger = self.loop.now + Self.linger
            self.syncDeadlines()
        }
    }
}
