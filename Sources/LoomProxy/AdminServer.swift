import LoomConfig
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin API's listener: plain HTTP/1.1 through NIO's codec (admin traffic is a probe or
/// an operator, not the data path), answering from `AdminAPI`. Request bodies are ignored and
/// bounded; one request at a time per connection.
///
/// It has its own thread: it answers while the engine drains and shuts its loops down, and
/// `/health` can report data-path loops that stopped responding.
public final class AdminServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel

    private init(group: MultiThreadedEventLoopGroup, channel: Channel) {
        self.group = group
        self.channel = channel
    }

    /// The bound address (the port resolved when 0 was asked for).
    public var address: SocketAddress? { channel.localAddress }

    /// Binds `settings`' address and serves `api` there.
    public static func start(_ settings: AdminSettings, api: AdminAPI, logger: Logger) async throws -> AdminServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(group.next())
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(api: api, executor: executor))
                }
            }
        var host = settings.host ?? "0.0.0.0"
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: host, port: settings.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        if let address = channel.localAddress {
            logger.info("admin API listening", metadata: ["address": .string(ProxyEngine.render(address))])
        }
        return AdminServer(group: group, channel: channel)
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// One admin connection: collects a request head (its body, at most 64 KiB, is dropped),
/// asks `AdminAPI`, writes the answer.
private final class AdminHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: AdminAPI
    private let executor: EventLoopTaskExecutor
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    static let maxBody = 64 * 1024

    init(api: AdminAPI, executor: EventLoopTaskExecutor) {
        self.api = api
        self.executor = executor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > Self.maxBody { context.close(promise: nil) }
        case .end:
            guard let head else { return }
            self.head = nil
            let api = self.api
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let promise = loop.makePromise(of: AdminAPI.Response.self)
            Task(executorPreference: executor) {
                promise.succeed(await api.respond(method: head.method.rawValue, target: head.uri, authorization: head.headers.first(name: "authorization")))
            }
            promise.futureResult.whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(response, for: head, context: context)
            }
        }
    }

    private func write(_ response: AdminAPI.Response, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("Content-Type", response.contentType), ("Content-Length", String(response.body.utf8.count)), ("Cache-Control", "no-store")])
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { written.whenComplete { _ in context.close(promise: nil) } }
    }
}
