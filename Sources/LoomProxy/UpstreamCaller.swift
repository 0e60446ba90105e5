import LoomConfig
import LoomWasm
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS
import LoomIO
import Synchronization

/// Plugins' calls to configured upstreams: `proxy_http_call` and `proxy_grpc_*`. Each call
/// is a fresh connection to the next endpoint of the upstream in turn, closed when the call
/// ends:
/// - an HTTP call to an HTTP/1.1 upstream is one request with `Connection: close`; to an
///   HTTP/2 upstream (`h2`, `h2c`, `grpc`) it is the one stream of its connection. The
///   response is collected (body up to `PluginHTTPResponse.bodyLimit`), everything bounded
///   by the call's timeout;
/// - a gRPC call is the one stream of an HTTP/2 connection (`UpstreamGRPCCall`); an
///   HTTP/1.1 upstream refuses it.
///
/// Calls are rare next to proxied requests (an authorization lookup, a log shipment), so
/// they use NIO's HTTP/1 codec (over HTTP/2 through NIOHTTP2's translation) rather than the
/// data path's pools.
final class UpstreamCaller: PluginHTTPCaller {
    private struct Target {
        let upstream: ProxySnapshot.Upstream
        /// The upstream's connect timeout, which also bounds a gRPC stream's connection.
        let connectTimeout: Duration
    }

    /// The snapshot's upstreams by name (endpoints and TLS); a reload replaces them
    /// (`update`), and plugins kept across the reload call the new ones.
    private let targets = Mutex<[String: Target]>([:])
    private let turn = Atomic<Int>(0)

    func update(_ snapshot: ProxySnapshot) {
        let targets = snapshot.upstreams.map { upstream in
            (upstream.name, Target(upstream: upstream, connectTimeout: snapshot.timeouts.configured.applying(upstream.config.timeouts).connect))
        }
        self.targets.withLock { $0 = Dictionary(targets, uniquingKeysWith: { first, _ in first }) }
    }

    /// The upstream called `name` and the endpoint whose turn it is, with its TLS client;
    /// nil when there is no such upstream. TLS files that could not be loaded throw.
    private func pick(_ name: String) -> (target: Target, index: Int, tls: Result<UpstreamTLSClient?, ListenerTLS.LoadError>)? {
        guard let target = targets.withLock({ $0[name] }), !target.upstream.endpoints.isEmpty else { return nil }
        let index = turn.wrappingAdd(1, ordering: .relaxed).oldValue % target.upstream.endpoints.count
        return (target, index, Result { () throws(ListenerTLS.LoadError) in try target.upstream.tlsClient() })
    }

    func call(
        _ request: PluginHTTPRequest, upstream: String, timeout: Duration, on eventLoop: any EventLoop,
        completion: @escaping @Sendable (PluginHTTPResponse?) -> Void
    ) -> Bool {
        guard let picked = pick(upstream) else { return false }
        let (target, index, tls) = picked
        let endpoint = target.upstream.endpoints[index]
        // TLS files that could not be loaded fail the call like a refused connection.
        guard case .success(let tls) = tls else {
            eventLoop.execute { completion(nil) }
            return true
        }
        let http2 = target.upstream.config.protocol.isHTTP2
        let collector = PluginCallCollector(completion: completion)
        let deadline = eventLoop.scheduleTask(in: TimeAmount(timeout)) { collector.finish(nil) }
        collector.onFinish = { deadline.cancel() }
        let opened: EventLoopFuture<Channel>
        if http2 {
            opened = Self.openHTTP2Stream(to: endpoint, tls: tls, connectTimeout: timeout, on: eventLoop) { stream in
                try stream.pipeline.syncOperations.addHandler(collector)
            }
        } else {
            opened = IOClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(timeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addUpstreamTLS(tls, for: endpoint)
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(to: endpoint)
        }
        opened.whenComplete { result in
            switch result {
            case .failure:
                collector.finish(nil)
            case .success(let channel):
                collector.channel = channel
                if collector.finished {
                    channel.close(promise: nil)
                } else {
                    Self.send(request, on: channel, http2: http2)
                }
            }
        }
        return true
    }

    func openGRPC(
        _ request: PluginGRPCRequest, upstream: String, on eventLoop: any EventLoop,
        events: @escaping @Sendable (PluginGRPCEvent) -> Void
    ) -> Result<any PluginGRPCStream, PluginGRPCOpenError> {
        guard let picked = pick(upstream) else { return .failure(.unknownUpstream) }
        let (target, index, tls) = picked
        guard target.upstream.config.protocol.isHTTP2 else { return .failure(.notHTTP2) }
        let call = UpstreamGRPCCall(request, authority: target.upstream.authorities[index], eventLoop: eventLoop, events: events)
        switch tls {
        case .failure(let error):
            eventLoop.execute { call.failedToOpen(error) }
        case .success(let tls):
            let connectTimeout = request.timeout.map { min($0, target.connectTimeout) } ?? target.connectTimeout
            Self.openHTTP2Stream(to: target.upstream.endpoints[index], tls: tls, connectTimeout: connectTimeout, on: eventLoop) { stream in
                try stream.pipeline.syncOperations.addHandler(call)
            }.whenComplete { result in
                switch result {
                case .success(let stream): call.attach(stream)
                case .failure(let error): call.failedToOpen(error)
                }
            }
        }
        return .success(call)
    }

    /// A fresh HTTP/2 connection to `endpoint` (over TLS, `tls` offers only `h2` by ALPN) and
    /// one stream on it, speaking NIO's HTTP/1 client parts, with `initialize`'s handlers
    /// after the translation. The connection closes when the stream does, or when the stream
    /// cannot be opened. `connectTimeout` bounds the TCP connect and the TLS handshake: a
    /// peer that accepts and never finishes the handshake would otherwise hold a stream,
    /// which has no deadline of its own, for ever.
    private static func openHTTP2Stream(
        to endpoint: Endpoint, tls: UpstreamTLSClient?, connectTimeout: Duration, on eventLoop: any EventLoop,
        _ initialize: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let handshake = eventLoop.makePromise(of: Void.self)
        let connected = IOClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpstreamTLS(tls, for: endpoint)
                    if tls != nil { try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(handshake)) }
                    var connection = NIOHTTP2Handler.ConnectionConfiguration()
                    connection.initialSettings = [HTTP2Setting(parameter: .enablePush, value: 0)]
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: connection, streamConfiguration: .init()
                    ) { pushed in pushed.close() }
                }
            }
            .connect(to: endpoint)
        connected.whenComplete { result in
            switch result {
            case .failure(let error):
                handshake.fail(error)
            case .success(let connection):
                guard tls != nil else { return handshake.succeed(()) }
                let timer = eventLoop.scheduleTask(in: TimeAmount(connectTimeout)) {
                    handshake.fail(ChannelError.connectTimeout(TimeAmount(connectTimeout)))
                }
                handshake.futureResult.whenComplete { result in
                    timer.cancel()
                    if case .failure = result { connection.close(promise: nil) }
                }
            }
        }
        return connected.and(handshake.futureResult).flatMap { connection, _ in
            let stream = connection.eventLoop.makePromise(of: Channel.self)
            do {
                let multiplexer = try connection.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
                multiplexer.createStreamChannel(promise: stream) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let translation = HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: tls == nil ? .http : .https)
                        try channel.pipeline.syncOperations.addHandler(translation)
                        try initialize(channel)
                    }
                }
            } catch {
                stream.fail(error)
            }
            stream.futureResult.whenComplete { result in
                switch result {
                case .success(let channel): channel.closeFuture.whenComplete { _ in connection.close(promise: nil) }
                case .failure: connection.close(promise: nil)
                }
            }
            return stream.futureResult
        }
    }

    private static func send(_ request: PluginHTTPRequest, on channel: Channel, http2: Bool) {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: request.path)
        head.headers.add(name: "Host", value: request.authority)
        for field in request.headers {
            let name = field.name.lowercased()
            guard !["host", "connection", "content-length", "transfer-encoding"].contains(name) else { continue }
            // HTTP/2 has no connection fields, and allows TE only as `trailers` (RFC 9113 §8.2.2).
            if http2, ["keep-alive", "proxy-connection", "upgrade"].contains(name) || (name == "te" && field.value.lowercased() != "trailers") {
                continue
            }
            head.headers.add(name: field.name, value: field.value)
        }
        // HTTP/2 frames the body itself, and has no connection fields.
        if !http2 {
            head.headers.add(name: "Connection", value: "close")
            if request.trailers.isEmpty {
                head.headers.add(name: "Content-Length", value: String(request.body.count))
            } else {
                head.headers.add(name: "Transfer-Encoding", value: "chunked")
            }
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

/// Completes its promise when the connection's TLS handshake does, or fails it when the
/// connection fails first.
private final class TLSHandshakeWaiter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let done: EventLoopPromise<Void>

    init(_ done: EventLoopPromise<Void>) {
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { done.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
