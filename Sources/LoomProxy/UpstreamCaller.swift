import LoomConfig
import LoomWasm
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Plugins' HTTP calls (`proxy_http_call`) to configured upstreams: a fresh connection to
/// the next endpoint of the upstream in turn, one request with `Connection: close`, the
/// response collected (body up to `PluginHTTPResponse.bodyLimit`), everything bounded by
/// the call's timeout.
///
/// Calls are rare next to proxied requests (an authorization lookup, a log shipment), so
/// they use NIO's HTTP/1 client codec rather than the data path's pools.
final class UpstreamCaller: PluginHTTPCaller {
    /// The snapshot's upstreams by name (endpoints and TLS); a reload replaces them
    /// (`update`), and plugins kept across the reload call the new ones.
    private let upstreams = Mutex<[String: ProxySnapshot.Upstream]>([:])
    private let turn = Atomic<Int>(0)

    func update(_ upstreams: [ProxySnapshot.Upstream]) {
        self.upstreams.withLock { $0 = Dictionary(upstreams.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }) }
    }

    func call(
        _ request: PluginHTTPRequest, upstream: String, timeout: Duration, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (PluginHTTPResponse?) -> Void
    ) -> Bool {
        guard let target = upstreams.withLock({ $0[upstream] }), !target.endpoints.isEmpty else { return false }
        // Calls speak HTTP/1.1: an HTTP/2 upstream's call fails like a refused connection.
        guard !target.config.protocol.isHTTP2 else {
            eventLoop.execute { completion(nil) }
            return true
        }
        let endpoint = target.endpoints[turn.wrappingAdd(1, ordering: .relaxed).oldValue % target.endpoints.count]
        // TLS files that could not be loaded fail the call like a refused connection.
        let tls: UpstreamTLSClient?
        do {
            tls = try target.tlsClient()
        } catch {
            eventLoop.execute { completion(nil) }
            return true
        }
        let collector = PluginCallCollector(completion: completion)
        let deadline = eventLoop.scheduleTask(in: TimeAmount(timeout)) { collector.finish(nil) }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpstreamTLS(tls, for: endpoint)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        let connected = bootstrap.connect(to: endpoint)
        connected.whenComplete { result in
            switch result {
            case .failure:
                collector.finish(nil)
            case .success(let channel):
                collector.channel = channel
                if collector.finished {
                    channel.close(promise: nil)
                } else {
                    Self.send(request, on: channel)
                }
            }
        }
        collector.onFinish = { deadline.cancel() }
        return true
    }

    private static func send(_ request: PluginHTTPRequest, on channel: Channel) {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: request.path)
        head.headers.add(name: "Host", value: request.authority)
        for field in request.headers where !["host", "connection", "content-length", "transfer-encoding"].contains(field.name.lowercased()) {
            head.headers.add(name: field.name, value: field.value)
        }
        head.headers.add(name: "Connection", value: "close")
        if request.trailers.isEmpty {
            head.headers.add(name: "Content-Length", value: String(request.body.count))
        } else {
            head.headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !request.body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: request.body))), promise: nil) }
        let trailers = request.trailers.isEmpty ? nil : HTTPHeaders(request.trailers.map { ($0.name, $0.value) })
        channel.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
    }
}

/// Collects one call's response; finishes once (response, failure or timeout) and closes
/// the connection. Lives on the call's event loop.
private final class PluginCallCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let completion: @Sendable (PluginHTTPResponse?) -> Void
    var channel: Channel?
    var onFinish: (() -> Void)?
    private(set) var finished = false
    private var response: PluginHTTPResponse?

    init(completion: @escaping @Sendable (PluginHTTPResponse?) -> Void) {
        self.completion = completion
    }

    func finish(_ result: PluginHTTPResponse?) {
        guard !finished else { return }
        finished = true
        onFinish?()
        channel?.close(promise: nil)
        completion(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            response = PluginHTTPResponse(status: Int(head.status.code), headers: head.headers.map { HeaderPair(name: $0.name, value: $0.value) }, body: [])
        case .body(let bytes):
            guard response != nil, (response?.body.count ?? 0) + bytes.readableBytes <= PluginHTTPResponse.bodyLimit else { return finish(nil) }
            response?.body += bytes.readableBytesView
        case .end(let trailers):
            response?.trailers = trailers.map { $0.map { HeaderPair(name: $0.name, value: $0.value) } } ?? []
            finish(response)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(nil)
    }
}
