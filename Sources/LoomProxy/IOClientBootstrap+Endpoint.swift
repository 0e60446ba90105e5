import LoomConfig
import NIOCore
import LoomIO

extension IOClientBootstrap {
    /// Connects to an upstream endpoint: TCP with Nagle off (heads and small bodies go out
    /// at once), or a unix socket. The one place the pool, health checks and plugins'
    /// calls dial an endpoint.
    func connect(to endpoint: Endpoint) -> EventLoopFuture<Channel> {
        switch endpoint {
        case .tcp(let host, let port):
            channelOption(.tcpOption(.tcp_nodelay), value: 1).connect(host: host, port: port)
        case .unix(let path):
            connect(unixDomainSocketPath: path)
        }
    }
}
