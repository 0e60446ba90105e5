import LoomConfig
import LoomHTTP
import NIOCore

/// The state of one request on a downstream connection, from its parsed head to the last
/// byte of its response.
///
/// Owned by `DownstreamHandler` (one at a time per connection, on the connection's loop) and
/// touched only there. A class, not a value: it is read and updated from many callbacks, and
/// copying a struct with this many references cost more retains than one allocation.
final class Exchange {
    /// Where the upstream side is.
    enum UpstreamPhase {
        /// No upstream: a local response (`respond` route or an error).
        case none
        /// Waiting for a pooled or new connection.
        case connecting
        case connected(UpstreamConnection)
        /// The upstream finished or was given up; nothing more will come from it.
        case finished
    }

    let snapshot: ProxySnapshot
    let head: HTTPRequestHead
    let requestID: String
    let started: NIODeadline
    var routeName: String?
    var upstreamName: String?
    /// Index of the route's upstream in `snapshot.upstreams`.
    var upstreamIndex: Int?
    var endpoint: Endpoint?
    var timeouts: Timeouts
    /// The request-target sent upstream (after `strip_prefix`).
    var forwardTarget: String = ""
    var addHeaders: [HeaderPair] = []

    var requestBody: HTTP1BodyDecoder
    var requestComplete: Bool
    var upstream: UpstreamPhase = .none
    /// Whether the current upstream connection came from the pool (and so may be stale).
    var reusedConnection = false
    /// Request body bytes sent on the current connection, kept while a retry is possible.
    var replay: [ByteBuffer] = []
    var replayBytes = 0
    /// The encoded last chunk (and trailers) of a chunked body already sent, kept with
    /// `replay`: without it a replayed chunked body would never end upstream.
    var replayEnd: ByteBuffer?
    var replayable = true
    var retried = false

    /// Set once the response head went to the client: from then on errors can only close.
    var responseStarted = false
    var responseFraming: HeadWriter.ResponseFraming = .none
    var status = 0
    var bytesIn = 0
    var bytesOut = 0
    var lastActivity: NIODeadline
    var error: GatewayError?

    var responseTimer: Scheduled<Void>?
    var idleTimer: Scheduled<Void>?
    var totalTimer: Scheduled<Void>?

    /// Request bodies up to this size are remembered so a request whose reused connection
    /// turned out to be closed can be sent again on a fresh one.
    static let replayLimit = 64 * 1024

    init(snapshot: ProxySnapshot, head: HTTPRequestHead, requestID: String, now: NIODeadline) {
        self.snapshot = snapshot
        self.head = head
        self.requestID = requestID
        self.started = now
        self.lastActivity = now
        self.timeouts = snapshot.timeouts
        self.requestBody = HTTP1BodyDecoder(framing: head.framing, limits: snapshot.requestLimits)
        self.requestComplete = head.framing == .none
        self.bytesIn = head.headers.bytes.readableBytes
    }

    /// Remembers a body chunk for a possible replay, or gives up replaying when too large.
    func recordForReplay(_ data: ByteBuffer) {
        guard replayable else { return }
        replayBytes += data.readableBytes
        if replayBytes > Self.replayLimit {
            replayable = false
            replay = []
            replayEnd = nil
        } else {
            replay.append(data)
        }
    }

    /// RFC 9110 §9.2.2: only idempotent requests are retried automatically.
    var methodIsIdempotent: Bool {
        switch head.method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": true
        default: false
        }
    }

    func cancelTimers() {
        responseTimer?.cancel()
        idleTimer?.cancel()
        totalTimer?.cancel()
        responseTimer = nil
        idleTimer = nil
        totalTimer = nil
    }

    var upstreamConnection: UpstreamConnection? {
        if case .connected(let connection) = upstream { return connection }
        return nil
    }
}
