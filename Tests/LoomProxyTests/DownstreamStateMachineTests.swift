import LoomFilters
import LoomHTTP
import Testing

@testable import LoomProxy

/// `#expect(a == b)`, for `a` produced by a mutating call (the macro captures immutably).
private func check<T: Equatable>(_ actual: T, _ expected: T, _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual == expected, Comment(rawValue: comment), sourceLocation: sourceLocation)
}

/// Every rule of the downstream connection lifecycle, without sockets.
@Suite struct DownstreamStateMachineTests {
    typealias Machine = DownstreamStateMachine

    static func request(
        keepAlive: Bool = true, hasBody: Bool = false, idempotent: Bool = true, expectsContinue: Bool = false, minor: Int = 1, mayResend: Bool = false
    ) -> Machine.Request {
        Machine.Request(
            keepAlive: keepAlive, hasBody: hasBody, resendable: idempotent, expectsContinue: expectsContinue, clientMinorVersion: minor, mayResend: mayResend)
    }

    /// A failure as the handler reports it: resending when the machine calls the connection
    /// stale (the handler's retry rules are not involved here).
    static func fail(_ machine: inout Machine, _ error: GatewayError, received: Bool, buffered: Bool) -> Machine.FailureAction {
        let stale = machine.isStaleConnection(error, receivedBytes: received)
        return machine.failed(error, receivedBytes: received, bufferedBytes: buffered, resend: stale ? .staleConnection : nil)
    }

    /// A machine with a proxied exchange whose upstream is connected.
    static func connected(_ request: Machine.Request = request(), reused: Bool = false) -> Machine {
        var machine = Machine()
        check(machine.requestStarted(request, local: false, bufferedBytes: false), .acquireUpstream)
        _ = machine.upstreamConnected(reused: reused)
        return machine
    }

    /// A paused filter holds the exchange with no upstream; its decision then starts one, or
    /// a local answer (which closes when the body has not been read past).
    @Test func pausedFiltersDecideLaterOnce() {
        var machine = Machine()
        check(machine.requestStarted(Self.request(), local: false, paused: true, bufferedBytes: false), .awaitFilters)
        #expect(machine.awaitingFilters)
        check(machine.filtersResumed(local: false, bufferedBytes: false), .acquireUpstream)
        #expect(!machine.awaitingFilters)
        check(machine.filtersResumed(local: true, bufferedBytes: false), nil, "decided once")

        var local = Machine()
        _ = local.requestStarted(Self.request(), local: false, paused: true, bufferedBytes: false)
        check(local.filtersResumed(local: true, bufferedBytes: false), .respondLocally(closeAfter: false))
        var withBody = Machine()
        _ = withBody.requestStarted(Self.request(hasBody: true), local: false, paused: true, bufferedBytes: false)
        check(withBody.filtersResumed(local: true, bufferedBytes: false), .respondLocally(closeAfter: true), "the unread body ends the connection")
        var gone = Machine()
        _ = gone.requestStarted(Self.request(), local: false, paused: true, bufferedBytes: false)
        _ = gone.connectionClosed()
        check(gone.filtersResumed(local: false, bufferedBytes: false), nil, "the client left")
    }

    @Test func proxiedExchangeKeepsTheConnectionAliveAndReleasesTheUpstream() {
        var machine = Self.connected()
        check(machine.requestBodyEnded(), true)  // the response timer starts
        check(machine.responseHeadReceived(upstreamFraming: .contentLength(5), bufferedBytes: false), .init(framing: .contentLength, closeAfter: false))
        check(machine.responseEnded(upstreamReusable: true, bufferedBytes: false), .init(releaseUpstream: true, next: .awaitNextRequest))
        #expect(machine.state == .awaitingHead)
    }

    @Test func clientConnectionCloseEndsAfterTheResponse() {
        var machine = Self.connected(Self.request(keepAlive: false))
        _ = machine.requestBodyEnded()
        check(machine.responseHeadReceived(upstreamFraming: .chunked, bufferedBytes: false).closeAfter, true)
        // It said this request is its last and sent nothing after it: no linger is needed.
        check(machine.responseEnded(upstreamReusable: true, bufferedBytes: false), .init(releaseUpstream: true, next: .closeAtOnce))
        #expect(machine.state == .closing)

        // Bytes after its last request (a client pipelining regardless) could still be
        // followed by more: the connection lingers.
        var pipelining = Self.connected(Self.request(keepAlive: false))
        _ = pipelining.requestBodyEnded()
        check(pipelining.responseEnded(upstreamReusable: true, bufferedBytes: true).next, .close)
        // So does one whose body was not read to its end.
        var unread = Self.connected(Self.request(keepAlive: false, hasBody: true))
        check(unread.responseEnded(upstreamReusable: true, bufferedBytes: false).next, .close)
    }

    @Test(arguments: [(HTTPBodyFraming.chunked, 1, HeadWriter.ResponseFraming.chunked, false), (.untilClose, 1, .chunked, false), (.chunked, 0, .untilClose, true), (.none, 1, .none, false)])
    func responseFramingFollowsTheClientVersion(upstream: HTTPBodyFraming, minor: Int, framing: HeadWriter.ResponseFraming, closes: Bool) {
        var machine = Self.connected(Self.request(minor: minor))
        _ = machine.requestBodyEnded()
        check(machine.responseHeadReceived(upstreamFraming: upstream, bufferedBytes: false), .init(framing: framing, closeAfter: closes))
    }

    @Test func upstreamNotReusableIsClosedButTheClientStays() {
        var machine = Self.connected()
        _ = machine.requestBodyEnded()
        _ = machine.responseHeadReceived(upstreamFraming: .contentLength(1), bufferedBytes: false)
        check(machine.responseEnded(upstreamReusable: false, bufferedBytes: false), .init(releaseUpstream: false, next: .awaitNextRequest))
    }

    @Test func responseBeforeTheBodyEndedClosesBothSides() {
        var machine = Self.connected(Self.request(hasBody: true))
        // The client is told at once that this connection ends with the response (as nginx does).
        check(machine.responseHeadReceived(upstreamFraming: .contentLength(2), bufferedBytes: false), .init(framing: .contentLength, closeAfter: true))
        check(machine.responseEnded(upstreamReusable: true, bufferedBytes: true), .init(releaseUpstream: false, next: .close))
    }

    @Test func localAnswerKeepsAliveOnlyWithoutAnUnreadBody() {
        var machine = Machine()
        check(machine.requestStarted(Self.request(), local: true, bufferedBytes: false), .respondLocally(closeAfter: false))
        check(machine.responseEnded(upstreamReusable: false, bufferedBytes: false), .init(releaseUpstream: false, next: .awaitNextRequest))
        check(machine.requestStarted(Self.request(hasBody: true), local: true, bufferedBytes: true), .respondLocally(closeAfter: true))
        check(machine.responseEnded(upstreamReusable: false, bufferedBytes: true).next, .close)
    }

    @Test func continueIsSentOnceAndOnlyForAPendingBody() {
        var machine = Machine()
        _ = machine.requestStarted(Self.request(hasBody: true, expectsContinue: true), local: false, bufferedBytes: false)
        check(machine.upstreamConnected(reused: true), .sendRequest(inviteBody: true))
        check(Self.fail(&machine, GatewayError(.upstreamClosed), received: false, buffered: false), .retry)
        check(machine.upstreamConnected(reused: false), .sendRequest(inviteBody: false))

        var bodiless = Machine()
        _ = bodiless.requestStarted(Self.request(expectsContinue: true), local: false, bufferedBytes: false)
        check(bodiless.upstreamConnected(reused: false), .sendRequest(inviteBody: false))
    }

    @Test func lateConnectionAfterTheExchangeIsReleased() {
        var machine = Machine()
        check(machine.upstreamConnected(reused: false), .releaseConnection)
    }

    @Test func staleReusedConnectionIsRetriedOnceForIdempotentRequests() {
        var machine = Self.connected(reused: true)
        let closed = GatewayError(.upstreamClosed)
        check(Self.fail(&machine, closed, received: false, buffered: false), .retry)
        _ = machine.upstreamConnected(reused: false)
        // The fresh connection failing too is answered, not retried again.
        check(Self.fail(&machine, closed, received: false, buffered: false), .respond(closeAfter: false))
    }

    @Test(arguments: [
        ("POST is not idempotent", false, true, false, true, GatewayError.Kind.upstreamClosed),
        ("a fresh connection is not retried", true, false, false, true, .upstreamClosed),
        ("something was received", true, true, true, true, .upstreamClosed),
        ("the body is no longer remembered", true, true, false, false, .upstreamClosed),
        ("timeouts are never retried", true, true, false, true, .responseHeaderTimeout),
    ])
    func noRetryWhenUnsafe(_ name: String, idempotent: Bool, reused: Bool, received: Bool, replayable: Bool, kind: GatewayError.Kind) {
        var machine = Self.connected(Self.request(idempotent: idempotent), reused: reused)
        if !replayable { machine.replayLimitExceeded() }
        check(Self.fail(&machine, GatewayError(kind), received: received, buffered: false), .respond(closeAfter: false), name)
    }

    /// A retry the handler decided on goes ahead only while nothing reached the client and the
    /// body is still kept; a request that may be resent keeps its body from the first attempt.
    @Test func retriesResendOnlyWhileTheRequestCanBeSentAgain() {
        var machine = Self.connected(Self.request(hasBody: true, mayResend: true), reused: false)
        #expect(machine.remembersBody, "kept on a fresh connection too")
        #expect(!machine.isStaleConnection(GatewayError(.upstreamClosed), receivedBytes: false), "a fresh connection is never stale")
        check(machine.failed(GatewayError(.upstreamClosed), receivedBytes: false, bufferedBytes: false, resend: .retry), .retry)
        check(machine.upstreamConnected(reused: false), .sendRequest(inviteBody: false))
        // Retries may repeat (the stale-connection replay may not).
        check(machine.failed(GatewayError(.connectTimeout), receivedBytes: false, bufferedBytes: false, resend: .retry), .retry)
        _ = machine.upstreamConnected(reused: false)
        machine.replayLimitExceeded()
        #expect(!machine.canResend && !machine.remembersBody)
        check(machine.failed(GatewayError(.upstreamClosed), receivedBytes: false, bufferedBytes: false, resend: .retry), .respond(closeAfter: true))

        var started = Self.connected(Self.request(mayResend: true))
        _ = started.requestBodyEnded()
        _ = started.responseHeadReceived(upstreamFraming: .contentLength(10), bufferedBytes: false)
        #expect(!started.canResend)
        check(started.failed(GatewayError(.upstreamClosed), receivedBytes: true, bufferedBytes: false, resend: .retry), .abort)

        let plain = Self.connected(Self.request(hasBody: true), reused: false)
        #expect(!plain.remembersBody, "nothing to keep when the request is never resent")
    }

    @Test func failureAfterTheResponseStartedCutsTheConnection() {
        var machine = Self.connected()
        _ = machine.requestBodyEnded()
        _ = machine.responseHeadReceived(upstreamFraming: .contentLength(100), bufferedBytes: false)
        check(Self.fail(&machine, GatewayError(.upstreamClosed), received: true, buffered: false), .abort)
        #expect(machine.state == .closing, "no more requests; what was written still goes out")
    }

    /// A filter's reset gets no answer at all, even before the response has started.
    @Test func aFilterResetCutsTheConnectionBeforeAnyResponse() {
        var machine = Self.connected()
        check(Self.fail(&machine, GatewayError(.filterRejected(.reset("reset by a test"))), received: false, buffered: false), .abort)
        #expect(machine.state == .closing)
        var refused = Self.connected()
        let forbidden = FilterRejection(status: 403, code: "forbidden", message: "no")
        check(Self.fail(&refused, GatewayError(.filterRejected(forbidden)), received: false, buffered: false), .respond(closeAfter: false))
    }

    @Test func errorResponseWithUnreadBodyCloses() {
        var machine = Self.connected(Self.request(hasBody: true))
        check(Self.fail(&machine, GatewayError(.connectTimeout), received: false, buffered: true), .respond(closeAfter: true))
        // The failed upstream is never handed back to the pool.
        check(machine.responseEnded(upstreamReusable: true, bufferedBytes: true), .init(releaseUpstream: false, next: .close))
    }

    @Test func halfCloseAnswersBufferedRequestsThenCloses() {
        var machine = Self.connected()
        check(machine.inputClosed(bufferedBytes: true), .checkRequestBody)
        _ = machine.requestBodyEnded()
        // A pipelined request is still buffered: keep going.
        check(machine.responseHeadReceived(upstreamFraming: .contentLength(1), bufferedBytes: true).closeAfter, false)
        check(machine.responseEnded(upstreamReusable: true, bufferedBytes: true).next, .awaitNextRequest)
        // Nothing more can come: close after the last one, and an idle half-closed connection closes now.
        check(machine.requestStarted(Self.request(), local: true, bufferedBytes: false), .respondLocally(closeAfter: true))
        check(machine.responseEnded(upstreamReusable: false, bufferedBytes: false).next, .closeAtOnce)
        var idle = Machine()
        check(idle.inputClosed(bufferedBytes: false), .close)
        // Requests held back before the FIN (the client was not reading) are still answered.
        var held = Machine()
        check(held.inputClosed(bufferedBytes: true), .processBuffered)
        #expect(held.state == .awaitingHead)
    }

    @Test func shutdownClosesIdleConnectionsNowAndBusyOnesAfterTheResponse() {
        var idle = Machine()
        check(idle.shutdownRequested(bufferedBytes: false), .close)

        var busy = Self.connected()
        check(busy.shutdownRequested(bufferedBytes: false), .none)
        _ = busy.requestBodyEnded()
        check(busy.responseHeadReceived(upstreamFraming: .contentLength(1), bufferedBytes: false).closeAfter, true)
        check(busy.responseEnded(upstreamReusable: true, bufferedBytes: false), .init(releaseUpstream: true, next: .close))
    }

    @Test func idleTimeoutBlamesWhoeverWentQuiet() {
        // Waiting for body bytes we are reading for: the client stalled its upload.
        #expect(Machine.idleTimeoutKind(requestComplete: false, readingClient: true, clientWritable: true) == .clientTimeout)
        // Reads held because the upstream is not taking the body: the upstream stalled.
        #expect(Machine.idleTimeoutKind(requestComplete: false, readingClient: false, clientWritable: true) == .idleTimeout)
        // The client does not take the response.
        #expect(Machine.idleTimeoutKind(requestComplete: true, readingClient: true, clientWritable: false) == .clientTimeout)
        #expect(Machine.idleTimeoutKind(requestComplete: true, readingClient: true, clientWritable: true) == .idleTimeout)
    }

    /// After a 101 the connection is a tunnel: nothing is resent, its end ends the
    /// connection (never the next request, never the pool), a failure cuts it, and the
    /// client's FIN is passed on rather than ending it.
    @Test func aTunnelEndsTheConnectionWithIt() {
        var machine = Self.connected()
        check(machine.requestBodyEnded(), true)
        machine.tunnelOpened()
        check(machine.exchange?.tunnel, true)
        check(machine.canResend, false)
        check(machine.remembersBody, false)
        check(machine.inputClosed(bufferedBytes: false), .checkRequestBody)
        check(machine.responseEnded(upstreamReusable: true, bufferedBytes: true), Machine.FinishAction(releaseUpstream: false, next: .close))

        var failing = Self.connected()
        _ = failing.requestBodyEnded()
        failing.tunnelOpened()
        check(Self.fail(&failing, GatewayError(.idleTimeout), received: true, buffered: false), .abort)
    }

    @Test func lateEventsWithoutAnExchangeAreIgnored() {
        var machine = Machine()
        check(Self.fail(&machine, GatewayError(.idleTimeout), received: true, buffered: false), .ignore)
        check(machine.requestBodyEnded(), false)
        check(machine.connectionClosed(), nil)
    }
}
