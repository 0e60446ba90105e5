import LoomConfig
import LoomFilters
import LoomHTTP
import LoomIO
import LoomRouting
import NIOCore
import Synchronization

/// One client connection: parses its requests, routes each one, and drives its exchange.
///
/// This is the front door of the request path (DESIGN.md §2), read top to bottom:
/// bytes in → `processInbound` → `HTTP1HeadParser` → `startExchange` (snapshot, request id,
/// route) → local response or `acquireUpstream` (pool lease / connect on this loop) →
/// `DownstreamHandler+Forwarding` streams the request body up and the response back →
/// `finishExchange` (pool release, access log, keep-alive or close).
///
/// It is the I/O shell around `DownstreamStateMachine`: every decision (keep-alive, close,
/// retry, `100 Continue`) is the machine's; this class parses, writes, connects and times,
/// and runs the actions the machine returns. Requests are handled strictly one at a time:
/// bytes of a pipelined next request wait in `inbound` until the current response is
/// complete. Everything runs on the connection's event loop; no locks.
package final class DownstreamHandler: SocketReadingHandler, DrainableConnection, CoalescedFlushing {
    // `package` for the proxied-exchange micro-benchmark, which drives the handler on an
    // embedded channel; the conformance's members must then be as visible as the type.
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    let loop: LoopContext
    let store: SnapshotStore
    private var snapshotCache: SnapshotStore.Cache
    /// The listener's port, for `X-Forwarded-Port`; the configured one, or the bound one
    /// when the listener asked for an ephemeral port (0).
    var listenerPort: Int
    let accessLog: AccessLog
    /// The connection's TLS (nil: plain HTTP).
    let tls: ConnectionTLS?
    /// Whether this handler serves one HTTP/2 stream (behind `HTTP2StreamBridge`) rather
    /// than an HTTP/1.1 connection.
    let isHTTP2Stream: Bool
    /// Where writes, flushes and reads go: straight to the socket on a plain HTTP/1 connection.
    private var outlet = ChannelOutlet()
    var context: ChannelHandlerContext? { outlet.context }
    var clientWritable: Bool { outlet.isWritable }
    var machine = DownstreamStateMachine()
    /// Bytes received and not yet consumed: a partial head, body bytes, pipelined requests.
    var inbound = ByteBuffer()
    var headParser: HTTP1HeadParser
    /// The resources of the exchange in flight (its decisions are `machine.exchange`).
    var exchange: Exchange?
    /// Increments per exchange so late callbacks (a connect finishing after a timeout) can
    /// tell they belong to an exchange that is over.
    var exchangeSerial = 0
    var clientAddress: SocketAddress?
    var clientIP: String?
    /// The connection's peer and local addresses as `ip:port`, for filters that read them
    /// (`HTTPFilter.needsConnectionAddresses`); formatted at the first such request.
    private var connectionAddresses: (source: String?, destination: String?)?
    var readGate = ReadGate()
    /// Whether bytes were written to the client since the last flush.
    private var unflushed = false
    /// A flush waits for the end of the loop tick (`LoopTick`).
    var flushHeld = false
    /// A response head not written yet (`upstreamResponseHead`), with the machine's verdict.
    var heldHead: HeldHead?
    /// A parsed upstream response head waiting for its first body bytes (or the end of the
    /// read batch), so a small response leaves in one buffer.
    struct HeldHead {
        let head: HTTPResponseHead
        let action: DownstreamStateMachine.ResponseHeadAction
        /// The response header rules, the filters' changes included.
        let rules: PreparedHeaderRules
    }
    private var processing = false
    /// Set by a re-entrant `processInbound`: bytes arrived while the body was being pumped.
    private var reprocess = false
    /// Timeouts (`DownstreamHandler+Timers`); the stall deadline bounds how long a client that
    /// does not read its responses keeps the connection: set while closing, and while
    /// pipelined requests wait for the client to read.
    var deadlines = DownstreamDeadlines()
    var timerSlot: TimerWheelSlot?

    /// Unconsumed bytes above which we stop reading from the client (pipelining, slow upstream).
    static let inboundHighWatermark = 64 * 1024

    package init(loop: LoopContext, store: SnapshotStore, listenerPort: Int, accessLog: AccessLog, tls: ConnectionTLS? = nil, isHTTP2Stream: Bool = false) {
        self.loop = loop
        self.store = store
        self.listenerPort = listenerPort
        self.accessLog = accessLog
        self.tls = tls
        self.isHTTP2Stream = isHTTP2Stream
        self.snapshotCache = store.makeCache()
        self.headParser = HTTP1HeadParser(limits: snapshotCache.snapshot.requestLimits)
    }

    /// The configuration snapshot new work starts with (an exchange keeps the one it began
    /// with). Reading it is one atomic load. An idle connection keeps the snapshot of its last
    /// request until its next one: old configurations live on a little longer after a
    /// reload, a few KiB each.
    var snapshot: ProxySnapshot { store.current(&snapshotCache) }

    var bufferedBytes: Bool { inbound.readableBytes > 0 }

    // MARK: Channel events

    package func handlerAdded(context: ChannelHandlerContext) {
        // The handler is alone in its pipeline unless it serves TLS or an HTTP/2 stream
        // (`ProxyEngine.listen` builds it; a protocol selector has removed itself by now).
        outlet.attach(context, alone: tls == nil && !isHTTP2Stream ? self : nil)
        // Added after the protocol was chosen (ALPN, the h2c preface): the channel is
        // active already and `channelActive` will not come.
        if context.channel.isActive { becameActive(context: context) }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        outlet.detach()
        loop.clearDeadline(self)
    }

    package func channelActive(context: ChannelHandlerContext) {
        becameActive(context: context)
        context.fireChannelActive()
    }

    private func becameActive(context: ChannelHandlerContext) {
        clientAddress = context.channel.remoteAddress
        clientIP = clientAddress.flatMap(TrustedProxies.text(of:))
        // Port 0 in the configuration means "any": the port clients reached is the bound one.
        if listenerPort == 0, let port = context.channel.localAddress?.port { listenerPort = port }
        loop.register(self)
        startKeepAliveTimer(now: loop.now)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        cancelConnectionTimers()
        loop.unregister(self)
        if machine.connectionClosed() != nil, let exchange {
            // The client went away mid-exchange: the upstream connection is in an unknown
            // state and cannot be reused. 499 is nginx's "client closed request".
            exchange.connection?.close()
            if exchange.status == 0 { exchange.status = 499 }
            recordEnd(of: exchange, now: loop.now)
        }
        exchange = nil
        heldHead = nil
        inbound = ByteBuffer()
        context.fireChannelInactive()
    }

    // `read`, `channelRead` and `channelReadComplete` come here from the pipeline
    // (`SocketReadingHandler`), or straight from a plain connection's socket (`ChannelOutlet`).

    package func socketWantsRead() {
        if readGate.admit() { outlet.read() }
    }

    package func socketRead(_ bytes: ByteBuffer) {
        switch machine.state {
        case .closing, .closed:
            return  // lingering close: discard whatever the client still sends
        case .awaitingHead, .exchanging:
            break
        }
        inbound.accumulate(bytes)
        if exchange != nil { noteActivity() }
        processInbound()
        if inbound.readableBytes > Self.inboundHighWatermark { pauseReading() }
    }

    package func socketReadComplete() {
        if let connection = exchange?.connection { loop.flushSoon(connection) }
        loop.flushSoon(self)
        inbound.shrinkAfterReads()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = clientWritable
        if let exchange, let connection = exchange.connection {
            // Downloads: the upstream is read only as fast as the client takes the bytes (and
            // not at all while a filter holds the response head).
            if writable, exchange.heldResponse == nil {
                noteActivity()
                connection.resumeReading()
            } else if !writable {
                connection.pauseReading()
            }
        } else if writable, machine.state == .awaitingHead {
            // Pipelined requests held back while the client was not reading. This is not a
            // read batch: nothing else flushes what they write (a `100 Continue`, an answer).
            deadlines.stall = nil
            resumeReading()
            processInbound()
            flushClient()
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch machine.inputClosed(bufferedBytes: bufferedBytes) {
        case .close:
            closeGracefully()
        case .checkRequestBody:
            // The rest of the body may already be buffered, waiting for the upstream
            // connection: only a body that cannot complete from `inbound` is truncated.
            pumpRequestBody()
        case .processBuffered:
            processInbound()
        case .none:
            break
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        // What was answered already goes first: a response may wait for the end of the loop
        // tick (`LoopTick`), and TLS reports a client's FIN without close_notify as
        // an error right after the read that carried its last request.
        flushClient()
        context.close(promise: nil)
    }

    // MARK: Parsing and routing

    /// Consumes buffered bytes: parses the next head when idle, streams body bytes when in an
    /// exchange. Re-entrant calls (an exchange finishing while we are in here, or bytes an
    /// HTTP/2 stream delivers inside the `read()` that resuming reads issues) just let the
    /// running loop continue with the new state and bytes.
    func processInbound() {
        guard !processing else {
            reprocess = true
            return
        }
        processing = true
        defer { processing = false }
        while true {
            switch machine.state {
            case .awaitingHead:
                guard inbound.readableBytes > 0 else { return }
                // A client that pipelines but does not read its responses: answer no more
                // until it does (`channelWritabilityChanged` resumes), else the responses
                // would pile up in memory without bound.
                guard clientWritable else {
                    pauseReading()
                    startStallTimer()
                    return
                }
                deadlines.keepAlive = nil
                let head: HTTPRequestHead?
                do {
                    head = try headParser.parseRequestHead(&inbound)
                } catch {
                    rejectRequest(GatewayError(.invalidRequest(error)))
                    return
                }
                // Moved out of the optional: `startExchange` takes it over without a copy.
                guard let head = consume head else {
                    if machine.inputClosed {
                        // A partial head after the client's FIN can never be finished.
                        machine.closing()
                        closeGracefully()
                    } else {
                        startHeaderTimerIfNeeded()
                    }
                    return
                }
                deadlines.requestHeader = nil
                startExchange(head)
            case .exchanging:
                reprocess = false
                pumpRequestBody()
                if case .exchanging = machine.state, !reprocess { return }
            case .closing, .closed:
                return
            }
        }
    }

    /// Answers a request that never got a usable head (invalid bytes, or too slow) and
    /// closes: the position of the next request in the stream is unknown (anti-smuggling).
    func rejectRequest(_ error: GatewayError) {
        guard let context else { return }
        machine.closing()
        let snapshot = self.snapshot
        let requestID = loop.requestIDs.next().text
        var out = context.channel.allocator.buffer(capacity: 256)
        ErrorResponse.write(
            error, requestID: requestID, requestIDHeader: snapshot.forwarding.requestIDHeader,
            date: loop.date.current(), close: true, headRequest: false, into: &out)
        send(out)
        accessLog.recordRejected(status: error.status, requestID: requestID, clientIP: clientIP, reason: error.description)
        loop.metrics?.recordRefused(status: error.status)
        closeGracefully()
    }

    /// Starts the exchange for a parsed head: snapshot, request id, route, then either a local
    /// answer or the upstream.
    ///
    /// The head moves into the exchange and is read from there: a copy of it is a dozen
    /// reference counts (its strings, bytes and field array) taken and dropped per request.
    private func startExchange(_ head: consuming HTTPRequestHead) {
        let snapshot = self.snapshot
        // A client identity comes only from a verified certificate: a client's own field of
        // that name is gone before routing, filters and plugins look at the head.
        if !snapshot.clientIdentityHeadersLowercased.isEmpty { head.headers.removeAll(named: snapshot.clientIdentityHeadersLowercased) }
        let requestID: RequestID
        if let given = head.headers.firstValue(named: snapshot.requestIDHeaderLowercased),
            RequestIDGenerator.isWellFormed(given)
        {
            requestID = RequestID(given: given)
        } else {
            requestID = loop.requestIDs.next()
        }
        exchangeSerial &+= 1
        let exchange = Exchange(snapshot: snapshot, head: head, requestID: requestID, now: loop.now)
        self.exchange = exchange

        // Route on the normalized path, then tell the machine whether the answer is local.
        let routed: Routed
        if exchange.head.method == "CONNECT" {
            routed = .local(.error(GatewayError(.tunnelNotSupported)))
        } else if let path = RequestPath.normalized(exchange.head.path) {
            routed = route(exchange.head, path: path, exchange: exchange, snapshot: snapshot)
        } else {
            routed = .local(.error(GatewayError(.dotSegmentInPath)))
        }

        var hasBody = exchange.head.framing != .none
        if case .local = routed, hasBody, skipBufferedBody(of: exchange) { hasBody = false }
        let request = DownstreamStateMachine.Request(
            keepAlive: exchange.head.keepAlive, hasBody: hasBody, resendable: exchange.resendable,
            expectsContinue: exchange.head.expectsContinue, clientMinorVersion: exchange.head.minorVersion,
            mayResend: exchange.resendable && (exchange.route?.upstreamIndex.map { snapshot.upstreams[$0].retryPolicy.maxRetries } ?? 0) > 0)
        var paused: (index: Int, pause: FilterPause)?
        if case .paused(let index, let pause) = routed { paused = (index, pause) }
        let action = machine.requestStarted(request, local: routed.localAnswer != nil, paused: paused != nil, bufferedBytes: bufferedBytes)
        run(action, routed.localAnswer, exchange, paused: paused)
    }

    /// Acts on the machine's verdict for a routed request (at its start, or once paused
    /// filters decided).
    private func run(_ action: DownstreamStateMachine.StartAction, _ localAnswer: LocalAnswer?, _ exchange: Exchange, paused: (index: Int, pause: FilterPause)?) {
        switch action {
        case .respondLocally(let closeAfter):
            switch localAnswer {
            case .error(let error)? where error.resetsStream:
                // No answer at all: the machine cuts the connection (or the stream).
                failExchange(error)
                return
            case .error(let error)?: writeErrorResponse(error, closeAfter: closeAfter)
            case .static(let response)?: writeStaticResponse(response, closeAfter: closeAfter)
            case .file(let answer)?:
                // Ends the exchange itself, once the file has gone out.
                writeFileResponse(answer, closeAfter: closeAfter)
                return
            case nil: break
            }
            finishExchange()
        case .acquireUpstream:
            if deadlines.idleTimeout == nil { startExchangeTimers(exchange, now: exchange.started) }
            acquireUpstream(forceNew: false)
        case .awaitFilters:
            guard let paused else { return }
            if deadlines.idleTimeout == nil { startExchangeTimers(exchange, now: exchange.started) }
            awaitFilter(paused.index, paused.pause, exchange)
        }
    }

    /// A local answer does not need the request body, but when it is already here, reads
    /// past it so the connection can stay open (nginx discards it the same way). Returns
    /// whether it did.
    private func skipBufferedBody(of exchange: Exchange) -> Bool {
        guard let rest = try? bufferedBodyEnd(of: exchange) else { return false }
        exchange.bytesIn += inbound.readableBytes - rest.readableBytes
        inbound = rest
        return true
    }

    // MARK: Paused filters

    /// Starts paused filter `index`'s work; it resumes through `filtersResumed` on this loop.
    /// The wait is bounded by the route's `response_header` timeout.
    private func awaitFilter(_ index: Int, _ pause: FilterPause, _ exchange: Exchange) {
        exchange.pausedFilter = index
        deadlines.responseHeader = loop.now + exchange.timeouts.responseHeader
        syncDeadlines()
        let serial = exchangeSerial
        pause.start(FilterResumer(onLoopOnce { handler, next in handler.filtersResumed(serial: serial, index: index, next: next) }))
    }

    /// What a filter calls to go on after a pause, from any thread and maybe more than once:
    /// the first call runs `resume` on this handler's event loop, the others do nothing.
    func onLoopOnce<Value: Sendable>(_ resume: @escaping (DownstreamHandler, Value) -> Void) -> @Sendable (Value) -> Void {
        let handler = NIOLoopBound(self, eventLoop: loop.eventLoop)
        let body = NIOLoopBound(resume, eventLoop: loop.eventLoop)
        let once = FirstCall()
        return { value in
            guard once.claim() else { return }
            handler.eventLoop.execute { body.value(handler.value, value) }
        }
    }

    /// A filter ended the exchange between its phases (`FilterInterrupt`). While the chain
    /// waits for a paused filter, or a held response head or body end waits, the filter
    /// resumes those instead; this is for an exchange that waits for nothing of it.
    private func interrupted(serial: Int, _ rejection: FilterRejection) {
        guard exchangeSerial == serial, exchange != nil else { return }
        failExchange(GatewayError(.filterRejected(rejection)))
        flushClient()
    }

    /// Paused filter `index` decided (`next`): the chain goes on, then the route's action.
    private func filtersResumed(serial: Int, index: Int, next: (inout FilterRequest) throws -> FilterDecision) {
        guard exchangeSerial == serial, let exchange, exchange.pausedFilter == index, machine.awaitingFilters,
            let route = exchange.route, var request = exchange.filterRequest
        else { return }
        exchange.pausedFilter = nil
        deadlines.responseHeader = nil
        let verdict = route.filters.resume(&request, at: index, with: next)
        let snapshot = exchange.snapshot
        let routed = filterOutcome(verdict, request, route, exchange) ?? dispatch(route, head: exchange.head, path: exchange.path, exchange: exchange, snapshot: snapshot)
        switch routed {
        case .paused(let index, let pause):
            awaitFilter(index, pause, exchange)
        case .local(let answer):
            if machine.exchange?.requestComplete == false, skipBufferedBody(of: exchange) { _ = machine.requestBodyEnded() }
            if let action = machine.filtersResumed(local: true, bufferedBytes: bufferedBytes) { run(action, answer, exchange, paused: nil) }
        case .proceed:
            if let action = machine.filtersResumed(local: false, bufferedBytes: bufferedBytes) { run(action, nil, exchange, paused: nil) }
        }
        // Not in a read batch: nothing else flushes what this wrote.
        flushClient()
    }

    /// What routing decided.
    private enum Routed {
        /// Loom answers by itself.
        case local(LocalAnswer)
        /// Upstream, with the endpoint chosen.
        case proceed
        /// Filter `index` paused.
        case paused(index: Int, FilterPause)

        var localAnswer: LocalAnswer? {
            if case .local(let answer) = self { return answer }
            return nil
        }
    }

    /// Matches the route and fills in the exchange, runs its filters, then its action.
    private func route(_ head: HTTPRequestHead, path: String, exchange: Exchange, snapshot: ProxySnapshot) -> Routed {
        switch snapshot.router.match(method: head.method, host: head.host, path: path, query: head.query, headers: head.headers) {
        case .notFound:
            return .local(.error(GatewayError(.routeNotFound)))
        case .methodNotAllowed(let allowed):
            return .local(.error(GatewayError(.methodNotAllowed(allowed: allowed))))
        case .matched(let index, let captures):
            let route = snapshot.routes[index]
            exchange.route = route
            exchange.captures = captures
            exchange.timeouts = route.timeouts
            exchange.path = path
            exchange.resendable = exchange.methodIsIdempotent || route.config.retryNonIdempotent
            if !route.filters.isEmpty, let outcome = runRequestFilters(route, head: head, path: path, exchange: exchange, snapshot: snapshot) {
                return outcome
            }
            return dispatch(route, head: head, path: path, exchange: exchange, snapshot: snapshot)
        }
    }

    /// The route's action, once its filters let the request through.
    private func dispatch(_ route: ProxySnapshot.Route, head: HTTPRequestHead, path: String, exchange: Exchange, snapshot: ProxySnapshot) -> Routed {
        let query = head.query
        let captures = exchange.captures
        switch route.config.action {
        case .respond(let response):
            return .local(.static(response))
        case .redirect(let redirect):
            let location = redirect.location(path: path, captures: captures, names: route.parameterNames, query: query)
            return .local(.static(StaticResponse(status: redirect.status, headers: [HeaderPair(name: "Location", value: location)])))
        case .files(let files):
            return .local(serveFile(files, route: route, head: head, path: path, captures: captures))
        case .proxy(let upstreamName):
            exchange.upstreamName = upstreamName
            guard let upstreamIndex = route.upstreamIndex else { return .local(.error(GatewayError(.noEndpointAvailable(retryAfter: nil)))) }
            let upstream = snapshot.upstreams[upstreamIndex]
            exchange.upstream = upstream
            exchange.replayLimit = upstream.replayLimit
            let state = loop.state(of: upstream)
            exchange.count(in: state)
            switch loop.chooseEndpoint(of: upstream, state: state, head: head, path: path, clientIP: clientIP) {
            case .unavailable(let retryAfter): return .local(.error(GatewayError(.noEndpointAvailable(retryAfter: retryAfter))))
            case .endpoint(let index, let probe): exchange.assign(index, of: upstream, probe: probe)
            }
            guard let target = exchange.filterTargetOverride ?? Self.forwardTarget(head, path: path, query: query, route: route, captures: captures) else {
                return .local(.error(GatewayError(.rewrittenPathInvalid)))
            }
            let removed = exchange.filterRemovedQueryParameters
            exchange.forwardTarget = removed.isEmpty ? target : QueryString.removing(removed, from: target)
            return .proceed
        }
    }

    /// Runs the route's filters on the request head; returns their outcome unless they all
    /// continued.
    private func runRequestFilters(
        _ route: ProxySnapshot.Route, head: HTTPRequestHead, path: String, exchange: Exchange, snapshot: ProxySnapshot
    ) -> Routed? {
        var parameters: [String: String] = [:]
        for (index, name) in route.parameterNames.enumerated() where index < exchange.captures.count {
            parameters[name] = String(exchange.captures.value(at: index, in: path))
        }
        var forwardedFor: [String] = []
        for index in 0..<head.headers.count where head.headers.name(at: index, equals: "x-forwarded-for") {
            forwardedFor.append(head.headers.value(at: index))
        }
        let client = snapshot.trustedProxies.originalClient(peer: clientAddress, peerText: clientIP, forwardedFor: forwardedFor)
        var request = FilterRequest(
            head: head, path: path, routeName: route.config.name, parameters: parameters,
            captures: exchange.captures, clientIP: client, requestID: exchange.requestID.text)
        request.loopIndex = loop.index
        request.security = tls?.security
        request.viaHTTP2 = isHTTP2Stream
        if route.filters.needsConnectionAddresses, let context {
            // Formatted once per connection: they do not change between its requests.
            if connectionAddresses == nil {
                connectionAddresses = (clientAddress.flatMap(Self.addressText), context.channel.localAddress.flatMap(Self.addressText))
            }
            request.sourceAddress = connectionAddresses?.source
            request.destinationAddress = connectionAddresses?.destination
        }
        if route.filters.needsInterrupt {
            let serial = exchangeSerial
            request.interrupt = FilterInterrupt(onLoopOnce { handler, rejection in handler.interrupted(serial: serial, rejection) })
        }
        let started = loop.metrics == nil ? nil : NIODeadline.now()
        let verdict = route.filters.requestHeaders(&request)
        if let started { exchange.filterNanoseconds += (NIODeadline.now() - started).nanoseconds }
        return filterOutcome(verdict, request, route, exchange)
    }

    /// `ip:port` (`[v6]:port`) of an IP socket address, as plugins read `source.address`.
    static func addressText(_ address: SocketAddress) -> String? {
        guard let ip = TrustedProxies.text(of: address), let port = address.port else { return nil }
        return ip.utf8.contains(UInt8(ascii: ":")) ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// What the request filters' verdict means for the exchange (nil: on to the route's
    /// action). Their changes to the request become the exchange's request rules.
    private func filterOutcome(_ verdict: FilterChain.RequestVerdict, _ request: FilterRequest, _ route: ProxySnapshot.Route, _ exchange: Exchange) -> Routed? {
        exchange.filterRequest = request
        switch verdict {
        case .failed(let failure):
            return .local(.error(GatewayError(.filterFailed(failure))))
        case .reject(let rejection):
            return .local(.error(GatewayError(.filterRejected(rejection))))
        case .respond(let response):
            // A filter's own answer is final: the response filters do not run on it.
            exchange.filterAnswered = true
            return .local(.static(StaticResponse(status: response.status, headers: response.headers, body: response.body)))
        case .paused(let index, let pause):
            return .paused(index: index, pause)
        case .continue:
            if !request.upstreamChanges.isEmpty {
                exchange.requestRules = PreparedHeaderRules(request.upstreamChanges.applied(to: route.config.requestHeaders))
            }
            return nil
        }
    }

    /// A `static` route's answer: the file the path names under the root, a redirect to a
    /// directory's `/`, or 404/403/405.
    private func serveFile(_ files: StaticFiles, route: ProxySnapshot.Route, head: HTTPRequestHead, path: String, captures: PathCaptures) -> LocalAnswer {
        guard head.method == "GET" || head.method == "HEAD" else { return .error(GatewayError(.methodNotAllowed(allowed: ["GET", "HEAD"]))) }
        // With strip_prefix, the file path starts after the route's prefix.
        let relative = route.config.stripPrefix ? route.rewriter?.apply(to: path, captures: captures) ?? path : path
        switch FileServer.lookup(Substring(relative), root: files.root, index: files.index) {
        case .file(let file):
            guard let answer = FileServer.answer(file, within: [files.root], method: head.method, field: { head.headers.firstValue(named: $0) }) else {
                return .error(GatewayError(.fileNotFound))
            }
            return .file(answer)
        case .directory:
            let location = path + "/" + (head.query.map { "?" + $0 } ?? "")
            return .static(StaticResponse(status: 301, headers: [HeaderPair(name: "Location", value: location)]))
        case .notFound:
            return .error(GatewayError(.fileNotFound))
        case .forbidden:
            return .error(GatewayError(.fileForbidden))
        }
    }

    /// What Loom answers by itself.
    private enum LocalAnswer {
        case error(GatewayError)
        case `static`(StaticResponse)
        case file(FileServer.Answer)
    }

    /// The origin-form target sent upstream: the normalized path (stripped or rewritten by the
    /// route) plus the query as sent.
    /// nil when the route's rewrite made a path that is not in normalized form.
    /// `query` is the request's (`head.query`).
    static func forwardTarget(
        _ head: HTTPRequestHead, path: String, query: Substring?, route: ProxySnapshot.Route, captures: PathCaptures
    ) -> String? {
        if head.target == "*" { return "*" }
        guard let rewriter = route.rewriter else {
            guard let query else { return path }
            // The `?` before the query, and the query, as sent.
            return path + head.target[head.target.index(before: query.startIndex)...]
        }
        let forwarded = rewriter.apply(to: path, captures: captures)
        // Captured text can make `..` or `//` out of a path that had none (`/u/..-x` through
        // `^/u/([^/]+)-x` → `/u/$1`): the backend would resolve it, so it is refused.
        let ownQuery = forwarded.utf8.firstIndex(of: UInt8(ascii: "?"))
        let rewrittenPath = ownQuery.map { String(forwarded[..<$0]) } ?? forwarded
        guard RequestPath.normalized(rewrittenPath) == rewrittenPath else { return nil }
        guard let query else { return forwarded }
        // A rewrite that made a query of its own gets the client's appended with `&`, as
        // nginx's `rewrite` does.
        guard ownQuery != nil else { return forwarded + "?" + query }
        return query.isEmpty ? forwarded : forwarded + "&" + query
    }

    // MARK: Writing to the client

    /// Queues bytes for the client; `flushClient` sends them.
    func send(_ buffer: ByteBuffer) {
        outlet.write(buffer)
        unflushed = true
    }

    /// Flushes, when something was written since the last flush: a flush is a trip through
    /// the pipeline and NIO's write path even with nothing pending, and a request passes
    /// several flush points (end of each read batch, end of the exchange).
    func flushClient() {
        guard unflushed else { return }
        unflushed = false
        outlet.flush()
    }

    var needsFlush: Bool { unflushed }

    func flushNow() {
        flushClient()
    }

    // MARK: Read backpressure

    func pauseReading() {
        readGate.pause()
    }

    func resumeReading() {
        if readGate.resume() { outlet.read() }
    }

    // MARK: Shutdown

    /// Graceful shutdown: an idle connection closes now, a busy one after its response.
    /// An HTTP/2 stream is left alone: its connection's GOAWAY drains it, and a stream the
    /// client opened before seeing the GOAWAY is still to be served.
    func beginShutdown() {
        guard !isHTTP2Stream else { return }
        if machine.shutdownRequested(bufferedBytes: bufferedBytes) == .close {
            // The last response may wait for the end of the loop tick (`LoopTick`).
            flushClient()
            context?.close(promise: nil)
        }
    }

    func forceClose() {
        context?.close(promise: nil)
    }
}

/// Says yes once: a paused filter's resumer may be called from several threads, or twice.
private final class FirstCall: Sendable {
    private let called = Atomic(false)

    func claim() -> Bool {
        !called.exchange(true, ordering: .relaxed)
    }
}
