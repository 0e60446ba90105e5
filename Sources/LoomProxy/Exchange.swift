import LoomConfig
import LoomFilters
import LoomHTTP
import LoomRouting
import LoomUpstream
import NIOCore

/// The resources and record of one request on a downstream connection: its head, route,
/// body decoder, upstream connection, replay buffer and the figures the access log
/// reports.
///
/// Its lifecycle decisions live in `DownstreamStateMachine`; this holds what those decisions
/// act on. Owned by `DownstreamHandler` (one at a time per connection) and touched only on
/// the connection's event loop. A class: it is reached from many callbacks, and copying a
/// struct with this many references cost more retains than one allocation per request.
final class Exchange {
    let snapshot: ProxySnapshot
    let head: HTTPRequestHead
    let requestID: RequestID
    let started: NIODeadline
    /// The matched route, once routed.
    var route: ProxySnapshot.Route?
    /// The route's path parameters and the rest after its prefix, as offsets into the
    /// normalized path (`route.parameterNames` names them).
    var captures = PathCaptures()
    var upstreamName: String?
    /// The route's upstream, once routed to one.
    var upstream: ProxySnapshot.Upstream?
    /// The endpoint of the current attempt, and its index in `upstream.endpoints`.
    var endpoint: Endpoint?
    var endpointIndex = 0
    /// Endpoints earlier attempts used (`LoopContext.bit`), so a retry goes elsewhere.
    var tried: UInt64 = 0
    /// Retries so far (attempts after the first; the stale-connection replay is not one).
    var retries = 0
    /// The method may be sent twice: idempotent, or the route says so (`retry_non_idempotent`).
    var resendable = false
    /// The in-flight counter this request is counted on (`least_conn`, `power_of_two`), until
    /// `release`.
    private var inFlight: InFlightCounter?
    /// The loop's counts for the upstream this request is counted in, until `release`.
    private var loopState: LoopUpstreamState?
    private(set) var countedAsRetry = false
    /// The current endpoint was taken for this request (`assign`) and still awaits its
    /// verdict (breakers, ejection); cleared when an outcome is recorded. A request that
    /// ends without one records `.abandoned`, which gives back a half-open probe slot.
    private var outcomePending = false
    /// The half-open breaker period that admitted this attempt as a probe, if it did.
    private var probe: Int64?
    /// The current attempt reached the point of connecting (a retry waiting out its backoff
    /// has not): only then can the endpoint be blamed for how it ends.
    private(set) var attemptStarted = false
    /// Counts connection attempts, so that a connect finishing after its attempt was
    /// abandoned (a per-try timeout moved on) is recognised as stale.
    private(set) var attempt = 0
    /// `endpoint`'s `Host` value, precomputed in the snapshot.
    var endpointAuthority = "localhost"
    var timeouts: TimeoutPeriods
    /// The normalized request path (what consistent hashing keys on when a retry picks again).
    var path = ""
    /// The request as the route's filters saw it (their changes included), kept for the
    /// response and log phases; nil when the route has no filters. Boxed: inline, it would
    /// make every exchange a few hundred bytes larger, filters or not.
    var filterRequest: FilterRequest? {
        get { filterBox?.request }
        set {
            // In place: what the box holds for the response side stays.
            guard let newValue else { return filterBox = nil }
            if let box = filterBox { box.request = newValue } else { filterBox = FilterBox(newValue) }
        }
    }
    private var filterBox: FilterBox?
    /// Fields of `filterRequest` read in place: the getter copies the whole request (its
    /// strings and arrays retained, then released), which the plugin route's profile showed.
    var filterTargetOverride: String? { filterBox?.request.targetOverride }
    var filterAuthorityOverride: String? { filterBox?.request.authorityOverride }
    var filterRemovedQueryParameters: [String] { filterBox?.request.removedQueryParameters ?? [] }
    /// What the filters do to the request body on its way upstream.
    var requestTransforms: BodyTransforms? {
        guard let transforms = filterBox?.request.bodyTransforms, !transforms.isEmpty else { return nil }
        return transforms
    }
    /// What the filters do to the response body (decided with the response head).
    var responseTransforms: BodyTransforms? {
        get { filterBox?.responseBody }
        set { filterBox?.responseBody = newValue }
    }
    /// The body goes upstream chunked: it came so, or a filter transforms it (its length is
    /// unknown until it ends).
    var sendsChunked: Bool { head.framing == .chunked || requestTransforms != nil }
    /// The index of the filter the request waits for, while one is paused.
    var pausedFilter: Int?
    /// The response head a filter holds, while one does.
    var heldResponse: HeldResponse? {
        get { filterBox?.heldResponse }
        set { filterBox?.heldResponse = newValue }
    }
    /// The end of a body a filter holds, while one does.
    var bodyEndHeld: BodyEndHeld? {
        get { filterBox?.bodyEndHeld }
        set { filterBox?.bodyEndHeld = newValue }
    }
    /// Whether the request body's end waits for a filter (the body pump stops meanwhile).
    var requestEndHeld: Bool { bodyEndHeld?.direction == .request }
    /// A filter answered the request itself (a CORS preflight): the response filters do not
    /// run on that answer (the log phase still does).
    var filterAnswered = false

    private final class FilterBox {
        var request: FilterRequest
        var responseBody: BodyTransforms?
        var heldResponse: HeldResponse?
        var bodyEndHeld: BodyEndHeld?
        init(_ request: FilterRequest) { self.request = request }
    }
    /// The route's request header rules with the filters' changes, when they made any.
    var requestRules: PreparedHeaderRules?
    /// The request-target as logged: as received, less the query parameters that carry
    /// credentials (any `api_key` filter's, and any a filter removed).
    var loggedTarget: String {
        let removed = snapshot.secretQueryParameters + filterRemovedQueryParameters
        guard !removed.isEmpty, head.query != nil else { return head.target }
        return QueryString.removing(removed, from: head.target)
    }
    /// The request-target sent upstream (after `strip_prefix`).
    var forwardTarget: String = ""

    var requestBody: HTTP1BodyDecoder
    /// The upstream connection carrying this exchange, once there is one.
    var connection: UpstreamConnection?

    /// Request body bytes already sent on a reused connection, kept while a retry is possible;
    /// for a chunked body, its encoded last chunk and trailers too.
    var replay: [ByteBuffer] = []
    var replayEnd: ByteBuffer?
    private var replayBytes = 0

    var status = 0
    var bytesIn = 0
    var bytesOut = 0
    /// When the current attempt started, and how long the last one took to its response
    /// head (for the upstream latency metric).
    var attemptStartedAt: NIODeadline?
    var upstreamLatency: TimeAmount?
    /// Time the filters took on the request and response heads.
    var filterNanoseconds: Int64 = 0
    /// Why the exchange failed, for the access log.
    var error: GatewayError?

    /// Request bodies up to this size are remembered so the request can be sent again (a
    /// retry, or a reused connection that turned out to be closed): the upstream's
    /// `retry.body_limit` once routed.
    var replayLimit = 64 * 1024
    /// The request is a gRPC call (`GRPC.isCall`): loom's own failures answer it with a gRPC
    /// status. Looked at only when needed.
    lazy var isGRPC = GRPC.isCall(head)
    /// The request timeout that runs is the call's `grpc-timeout`, shorter than loom's own.
    var deadlineFromGRPC = false

    /// The `Sec-WebSocket-Key` of a WebSocket handshake (`WebSocketUpgrade.key`), nil for
    /// any other request. Found here, where the head is a parameter: asked of `head` later,
    /// through this object, the whole head is copied for the call (a dozen reference counts).
    let webSocketKey: String?

    init(snapshot: ProxySnapshot, head: HTTPRequestHead, requestID: RequestID, now: NIODeadline) {
        self.snapshot = snapshot
        self.webSocketKey = WebSocketUpgrade.key(of: head)
        self.requestID = requestID
        self.started = now
        self.timeouts = snapshot.timeouts
        self.requestBody = HTTP1BodyDecoder(framing: head.framing, limits: snapshot.requestLimits)
        self.bytesIn = head.headers.bytes.readableBytes
        // Last, so the head moves in rather than being copied (a dozen reference counts).
        self.head = head
    }

    /// Remembers a body chunk for a replay; false (and forgets everything) once over the limit.
    func remember(_ data: ByteBuffer) -> Bool {
        replayBytes += data.readableBytes
        guard replayBytes <= replayLimit else {
            forgetReplay()
            return false
        }
        replay.append(data)
        return true
    }

    func forgetReplay() {
        replay = []
        replayEnd = nil
    }

    /// RFC 9110 §9.2.2: only idempotent requests are retried automatically.
    var methodIsIdempotent: Bool {
        switch head.method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": true
        default: false
        }
    }

    /// Starts counting this request against `upstream` on this loop.
    func count(in state: LoopUpstreamState) {
        loopState = state
        state.activeRequests += 1
    }

    /// Counts this request as a retry in its loop's budget (once, however many retries).
    func countAsRetry() {
        guard let loopState, !countedAsRetry else { return }
        countedAsRetry = true
        loopState.activeRetries += 1
    }

    /// Makes endpoint `index` of `upstream` the current attempt's: its address and `Host`,
    /// its in-flight count, a pending verdict for its health, and a mark so that a retry
    /// goes elsewhere.
    func assign(_ index: Int, of upstream: ProxySnapshot.Upstream, probe: Int64? = nil) {
        endpointIndex = index
        endpoint = upstream.endpoints[index]
        endpointAuthority = upstream.authorities[index]
        tried |= LoopContext.bit(index)
        if !upstream.inFlight.isEmpty {
            releaseInFlight()
            let counter = upstream.inFlight[index]
            counter.acquire()
            inFlight = counter
        }
        outcomePending = upstream.health != nil
        self.probe = probe
        attemptStarted = false
    }

    /// A connection attempt starts (the first, a retry's, or a stale connection's replay);
    /// returns its number.
    func startAttempt(now: NIODeadline) -> Int {
        attemptStarted = true
        attemptStartedAt = now
        attempt &+= 1
        return attempt
    }

    /// Records the current attempt's verdict on its endpoint (once per attempt). The clock and
    /// the random source are read only when there is a verdict to record.
    func recordOutcome(_ outcome: CircuitBreaker.Outcome, loop: LoopContext?) {
        guard outcomePending, let health = upstream?.health else { return }
        outcomePending = false
        health.record(endpointIndex, outcome, probe: probe, now: loop?.nowMillis ?? 0, random: loop?.nextRandom() ?? 0)
    }

    /// Gives back everything this request is counted in: the endpoint's in-flight count, the
    /// loop's request and retry counts, and an attempt without a verdict (a half-open probe
    /// slot). Later calls do nothing.
    func release() {
        releaseInFlight()
        if let loopState {
            loopState.activeRequests -= 1
            if countedAsRetry { loopState.activeRetries -= 1 }
            self.loopState = nil
        }
        recordOutcome(.abandoned, loop: nil)  // an abandoned outcome reads neither
    }

    private func releaseInFlight() {
        inFlight?.release()
        inFlight = nil
    }

    deinit {
        release()
    }
}
