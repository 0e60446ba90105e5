import LoomConfig
import LoomProxy
import Logging
import NIOCore
import NIOEmbedded

/// A client connection and one pooled upstream connection on an embedded loop.
public final class ProxiedExchange {
    /// What `bench/run` gives loom (`loom_config`), without the scenarios' other routes.
    static let configuration = """
        server:
          worker_threads: 1
          logging:
            access_log: false
        upstreams:
          - name: backend
            endpoints: ["127.0.0.1:19000"]
            pool:
              max_idle: 64
        routes:
          - id: all
            path: /*
            upstream: backend
        """
    /// wrk's request.
    static let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:19100\r\n\r\n"
    /// The backend's answer (nginx `return 200 "hello"`).
    static let response = """
        HTTP/1.1 200 OK\r
        Server: nginx/1.22.1\r
        Date: Sun, 06 Dec 2026 02:00:57 GMT\r
        Content-Type: text/plain\r
        Content-Length: 5\r
        Connection: keep-alive\r
        \r
        hello
        """

    let loop = EmbeddedEventLoop()
    private let client: EmbeddedChannel
    private let upstream: EmbeddedChannel
    private let requestBytes = ByteBuffer(string: ProxiedExchange.request)
    private let responseBytes = ByteBuffer(string: ProxiedExchange.response)

    public init() {
        let loaded = ConfigLoader.load(text: Self.configuration, fileName: "bench.yaml", dialect: .loomYAML, environment: [:])
        guard let configuration = loaded.configuration else { preconditionFailure("\(loaded.diagnostics)") }
        let snapshot = ProxySnapshot(configuration)
        let context = LoopContext(eventLoop: loop)
        let upstreamConfig = configuration.upstreams[0]
        let pool = context.pool(for: upstreamConfig.endpoints[0], settings: upstreamConfig.pool)
        let connection = UpstreamConnection(pool: pool, limits: snapshot.responseLimits)
        upstream = EmbeddedChannel(handler: connection, loop: loop)
        upstream.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 19000), promise: nil)
        pool.release(connection, now: loop.now)

        let handler = DownstreamHandler(
            loop: context, store: SnapshotStore(snapshot), listenerPort: 19100,
            accessLog: AccessLog(logger: Logger(label: "loom.access"), enabled: false))
        client = EmbeddedChannel(handler: handler, loop: loop)
        client.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 40000), promise: nil)
        precondition(client.isActive && upstream.isActive, "embedded channels are active once connected")
    }

    /// One request in, its head read off the upstream side, the response in: what the client
    /// received, as text.
    public func exchange() -> String {
        var text = ""
        forward { text += String(buffer: $0) }
        return text
    }

    /// The same exchange, counting the client's bytes instead of decoding them.
    public func exchangeCountingBytes() -> Int {
        var count = 0
        forward { count += $0.readableBytes }
        return count
    }

    private func forward(_ received: (ByteBuffer) -> Void) {
        try! client.writeInbound(requestBytes)
        var sent = 0
        while let head = try! upstream.readOutbound(as: ByteBuffer.self) { sent += head.readableBytes }
        precondition(sent > 0, "the request head did not reach the upstream")
        try! upstream.writeInbound(responseBytes)
        while let bytes = try! client.readOutbound(as: ByteBuffer.self) { received(bytes) }
        // Tasks the exchange scheduled to run at once (none on the small GET's path today).
        loop.run()
    }

    public func close() {
        _ = try? client.finish()
        _ = try? upstream.finish()
    }
}
