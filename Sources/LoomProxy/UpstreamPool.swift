import LoomConfig
import LoomHTTP
import NIOCore
import NIOPosix

/// Keep-alive connections to one endpoint, owned by one event loop.
///
/// Idle connections are kept on a stack (most recently used first: it is the one least likely
/// to have been closed by the backend's own idle timeout). A connection that the backend
/// closes while idle removes itself (`UpstreamConnection.channelInactive`), so a lease never
/// hands out a connection already known to be dead.
final class UpstreamPool {
    let endpoint: Endpoint
    let settings: PoolSettings
    let eventLoop: EventLoop
    private var idle: [UpstreamConnection] = []

    init(endpoint: Endpoint, settings: PoolSettings, eventLoop: EventLoop) {
        self.endpoint = endpoint
        self.settings = settings
        self.eventLoop = eventLoop
    }

    /// An idle live connection, or nil when a new one must be opened.
    func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            if connection.isUsable { return connection }
            connection.close()
        }
        return nil
    }

    /// Returns a connection after a complete exchange; closes it when the pool is full.
    func release(_ connection: UpstreamConnection, now: NIODeadline) {
        guard idle.count < settings.maxIdle, connection.isUsable else {
            connection.close()
            return
        }
        connection.markIdle(since: now)
        idle.append(connection)
    }

    /// Called by a connection that died or misbehaved while idle.
    func remove(_ connection: UpstreamConnection) {
        idle.removeAll { $0 === connection }
    }

    /// Closes idle connections older than the idle timeout.
    func sweep(now: NIODeadline) {
        let limit = TimeAmount(settings.idleTimeout)
        // Take them out first, close after: closing re-enters `remove` through
        // `channelInactive`, which must not run while `idle` is being mutated.
        var expired: [UpstreamConnection] = []
        idle.removeAll { connection in
            guard let since = connection.idleSince, now - since >= limit else { return false }
            expired.append(connection)
            return true
        }
        for connection in expired { connection.close() }
    }

    func closeAll() {
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.close() }
    }

    /// Opens a new connection on this loop.
    func connect(timeout: Duration, limits: HTTP1Limits) -> EventLoopFuture<UpstreamConnection> {
        let connection = UpstreamConnection(pool: self, limits: limits)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
        let future: EventLoopFuture<Channel>
        switch endpoint {
        case .tcp(let host, let port):
            bootstrap = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
            future = bootstrap.connect(host: host, port: port)
        case .unix(let path):
            future = bootstrap.connect(unixDomainSocketPath: path)
        }
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
