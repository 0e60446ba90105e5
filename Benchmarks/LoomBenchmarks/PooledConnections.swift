import LoomConfig
import LoomHTTP
import LoomProxy
import NIOCore
import NIOEmbedded

/// An `UpstreamPool` holding `count` idle connections, each an `UpstreamConnection` in a
/// connected `EmbeddedChannel`, so `isUsable` holds exactly as for a live socket.
///
/// `EmbeddedEventLoop` may only be used on the thread that created it, and the benchmark
/// library does not promise which thread runs a benchmark's setup hook, so each benchmark
/// iteration builds its own rig (outside the measured region) and tears it down after.
final class PooledConnections {
    let loop = EmbeddedEventLoop()
    let pool: UpstreamPool
    private var channels: [EmbeddedChannel] = []

    init(count: Int) {
        let endpoint = Endpoint.tcp(host: "10.0.0.5", port: 3000)
        pool = UpstreamPool(endpoint: endpoint, settings: PoolSettings(maxIdle: max(count, 64)), eventLoop: loop)
        let address = try! SocketAddress(ipAddress: "10.0.0.5", port: 3000)
        for _ in 0..<count {
            let connection = UpstreamConnection(pool: pool, limits: HTTP1Limits())
            let channel = EmbeddedChannel(handler: connection, loop: loop)
            channel.connect(to: address, promise: nil)
            precondition(channel.isActive, "an embedded channel is active once connected")
            channels.append(channel)
            pool.release(connection, now: loop.now)
        }
    }

    /// Closes every channel; each connection then leaves the pool through `channelInactive`.
    func close() {
        for channel in channels { _ = try? channel.finish() }
        channels.removeAll()
    }
}
