import LoomConfig
import LoomHTTP
import NIOCore
import LoomIO

/// Keep-alive connections to one endpoint (over one TLS client, if any), owned by one
/// event loop; or, for an HTTP/2 upstream, the one multiplexed connection whose streams
/// carry its exchanges (`UpstreamHTTP2Session`).
///
/// Idle connections are kept on a stack (most recently used first: it is the one least likely
/// to have been closed by the backend's own idle timeout). A connection that the backend
/// closes while idle removes itself (`UpstreamConnection.channelInactive`), so a lease never
/// hands out a connection already known to be dead.
package final class UpstreamPool {
    let endpoint: Endpoint
    /// The TLS its connections speak (nil: plain).
    let tls: UpstreamTLSClient?
    /// The endpoint speaks HTTP/2: exchanges are streams of `session`, never kept idle.
    let http2: Bool
    /// HTTP/2: the connection new streams open on (nil until first needed, and once it is
    /// closed or going away).
    private var session: UpstreamHTTP2Session?
    /// A reload may change them (`LoopContext.reconcilePools`).
    var settings: PoolSettings
    let eventLoop: EventLoop
    private var idle: [UpstreamConnection] = []
    /// Connections kept for reuse now (the admin API and metrics sample it).
    var idleCount: Int { idle.count }
    /// Set when a reload left no upstream using this endpoint: connections still in use are
    /// closed when their exchange ends instead of coming back.
    var retired = false

    package convenience init(endpoint: Endpoint, settings: PoolSettings, eventLoop: EventLoop) {
        self.init(endpoint: endpoint, tls: nil, http2: false, settings: settings, eventLoop: eventLoop)
    }

    init(endpoint: Endpoint, tls: UpstreamTLSClient?, http2: Bool, settings: PoolSettings, eventLoop: EventLoop) {
        self.endpoint = endpoint
        self.tls = tls
        self.http2 = http2
        self.settings = settings
        self.eventLoop = eventLoop
    }

    /// An idle live connection, or nil when a new one must be opened.
    package func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            if connection.isUsable { return connection }
            connection.close()
        }
        return nil
    }

    /// How long connections beyond `maxIdle` may stay idle before the sweep closes them.
    static let excessGrace = TimeAmount.seconds(1)

    /// How many unwritten bytes an upstream connection holds before it reports itself
    /// unwritable, and the client's reading pauses (`DownstreamHandler.pumpRequestBody`).
    /// NIO's default, 64 KiB, is smaller than a body of 64 KiB plus its head. Such a body
    /// crossed it within one read batch on every request, before the batch's flush wrote
    /// it all. The pause then cost NIO two `epoll_ctl`: swallowing the read drops the
    /// socket's read interest, and the resume adds it back. With 128 KiB, a 64 KiB body going
    /// to an upstream that takes it as fast as it comes is not paused, and a slow upstream
    /// still holds about 128 KiB per request, plus the read batch that crossed the mark
    /// (docs/BENCHMARKS.md, "A pause per request body").
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 64 * 1024, high: 128 * 1024)

    /// Returns a connection after a complete exchange.
    ///
    /// Kept even beyond `maxIdle`: the requests of a burst come back for their connections a
    /// moment later, and closing the excess at once made every burst reconnect (at 1,000
    /// concurrent clients, nearly one connect per request). The sweep closes the excess, least
    /// recently used first, once it has been idle for `excessGrace`, like HAProxy's gradual
    /// idle-pool purge.
    package func release(_ connection: UpstreamConnection, now: NIODeadline) {
        // An HTTP/2 stream carries one exchange; its connection stays with `session`.
        guard !http2, settings.maxIdle > 0, connection.isUsable, !retired else {
            connection.close()
            return
        }
        connection.markIdle(since: now)
        idle.append(connection)
    }

    /// Called by a session that failed, closed or was told to go away.
    func sessionEnded(_ ended: UpstreamHTTP2Session) {
        if session === ended { session = nil }
    }

    /// Called by a connection that died or misbehaved while idle.
    func remove(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    /// Closes idle connections older than the idle timeout, then those beyond `maxIdle` that
    /// have been idle for `excessGrace`.
    func sweep(now: NIODeadline) {
        let limit = TimeAmount(settings.idleTimeout)
        if let session, session.openStreams == 0, now - session.idleSince >= limit {
            self.session = nil
            session.retire()
        }
        // Take them out first, close after: closing re-enters `remove` through
        // `channelInactive`, which must not run while `idle` is being mutated.
        var expired: [UpstreamConnection] = []
        idle.removeAll { connection in
            guard let since = connection.idleSince, now - since >= limit else { return false }
            expired.append(connection)
            return true
        }
        // `idle` is a stack: the front holds the least recently used.
        var excess = 0
        while excess < idle.count - settings.maxIdle, let since = idle[excess].idleSince, now - since >= Self.excessGrace {
            excess += 1
        }
        expired += idle[..<excess]
        idle.removeFirst(excess)
        for connection in expired { connection.close() }
    }

    func closeAll() {
        session?.retire()
        session = nil
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.close() }
    }

    /// Opens a new connection on this loop (HTTP/2: a new stream, on a new connection when
    /// there is no open one).
    func connect(timeout: Duration, limits: HTTP1Limits) -> EventLoopFuture<UpstreamConnection> {
        if http2 {
            let session = self.session.flatMap { $0.isOpen ? $0 : nil } ?? UpstreamHTTP2Session.connect(pool: self, timeout: timeout, responseLimits: limits)
            let stream = session.openStream(limits: limits)
            if retired {
                // A reload dropped this endpoint while the request was on its way: its
                // connection serves this one stream, then goes (nothing would sweep it).
                session.retire()
            } else {
                self.session = session
            }
            return stream
        }
        let connection = UpstreamConnection(pool: self, limits: limits)
        // The channel lives on this loop (the bootstrap's only one), where the handler is used.
        let handler = NIOLoopBound(connection, eventLoop: eventLoop)
        let bootstrap = IOClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(timeout))
            // A tunnel's upstream may finish sending and still read (`UpstreamConnection`).
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
            .channelInitializer { [tls, endpoint] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpstreamTLS(tls, for: endpoint)
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
        let future = bootstrap.connect(to: endpoint)
        return future.map { _ in connection }
    }
}

extension TimeAmount {
    /// Converts a configuration `Duration` (saturating at the TimeAmount range).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if nanos.overflow { self = .nanoseconds(Int64.max) } else { self = .nanoseconds(nanos.partialValue &+ attoseconds / 1_000_000_000) }
    }
}
