import LoomConfig
import LoomHTTP
import LoomRouting
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
    let requestID: String
    let started: NIODeadline
    /// The matched route, once routed.
    var route: ProxySnapshot.Route?
    /// The route's path parameters and the rest after its prefix, as offsets into the
    /// normalized path (`route.parameterNames` names them).
    var captures = PathCaptures()
    var upstreamName: String?
    /// Index of the route's upstream in `snapshot.upstreams`.
    var upstreamIndex: Int?
    var endpoint: Endpoint?
    /// The in-flight counter this request is counted on (`least_conn`, `power_of_two`), until
    /// `releaseInFlight`.
    private var inFlight: InFlightCounter?
    /// `endpoint`'s `Host` value, precomputed in the snapshot.
    var endpointAuthority = "localhost"
    var timeouts: Timeouts
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
    /// Why the exchange failed, for the access log.
    var error: GatewayError?

    /// Request bodies up to this size are remembered so a request whose reused connection
    /// turned out to be closed can be sent again on a fresh one.
    static let replayLimit = 64 * 1024

    init(snapshot: ProxySnapshot, head: HTTPRequestHead, requestID: String, now: NIODeadline) {
        self.snapshot = snapshot
        self.head = head
        self.requestID = requestID
        self.started = now
        self.timeouts = snapshot.timeouts
        self.requestBody = HTTP1BodyDecoder(framing: head.framing, limits: snapshot.requestLimits)
        self.bytesIn = head.headers.bytes.readableBytes
    }

    /// Remembers a body chunk for a replay; false (and forgets everything) once over the limit.
    func remember(_ data: ByteBuffer) -> Bool {
        replayBytes += data.readableBytes
        guard replayBytes <= Self.replayLimit else {
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

    /// Counts this request on `counter` until `releaseInFlight` (or deinit).
    func countInFlight(on counter: InFlightCounter) {
        releaseInFlight()
        counter.acquire()
        inFlight = counter
    }

    /// Gives the request's in-flight count back; later calls do nothing.
    func releaseInFlight() {
        inFlight?.release()
        inFlight = nil
    }

    deinit {
        releaseInFlight()
    }
}
