import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real HTTP/1.1 backend for end-to-end tests, built on NIOHTTP1 (an implementation
/// independent of Loom's own parser, so the two check each other).
///
/// Behaviour is chosen by path:
/// - `/echo…` answers 200 with JSON describing the request it received: method, uri, headers
///   in order, body length and a checksum. The body is consumed as it streams, never stored.
/// - `/cookies` answers with three `Set-Cookie` fields in order.
/// - `/stream?bytes=N[&chunked=1]` streams N bytes (pattern `i % 251`), respecting writability.
/// - `/delay?ms=N` waits N ms before answering; `/stall` sends a head and part of a body,
///   then goes silent; `/status?code=N` answers with that status.
/// - `/close` answers with `Connection: close` semantics by closing after the response.
/// - `/flaky…` echoes like `/echo` when it is the first request on its connection, and closes
///   the connection without answering otherwise (a keep-alive race seen from the proxy).
/// - `/health` answers `healthStatus` (200 unless a test changes it) and is not logged in
///   `requestURIs`, so active health checks do not blur which backend served what.
/// Every accepted connection is counted, so tests can prove keep-alive reuse.
final class TestBackend: @unchecked Sendable {
    let group: EventLoopGroup
    private(set) var channel: Channel!
    private let accepted = NIOLockedValueBox(0)
    /// The request-target of every request head received, in arrival order.
    let requestURIs = NIOLockedValueBox<[String]>([])
    /// Close idle keep-alive connections after this long (simulates backend idle timeouts).
    let idleClose: TimeAmount?
    /// The status `/health` answers.
    let healthStatus = NIOLockedValueBox(200)
    /// Open connections, for `kill`.
    private let children = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    var connectionsAccepted: Int { accepted.withLockedValue { $0 } }

    var port: Int { channel.localAddress!.port! }

    /// Speaks HTTPS with this context (nil: plain HTTP).
    let tls: NIOSSLContext?

    init(group: EventLoopGroup, idleClose: TimeAmount? = nil, tls: NIOSSLContext? = nil) {
        self.group = group
        self.idleClose = idleClose
        self.tls = tls
    }

    /// Starts on an ephemeral port of `host` (IPv4 loopback by default), or on a unix socket
    /// at `unixPath`.
    func start(unixPath: String? = nil, host: String = "127.0.0.1", port: Int = 0) async throws {
        let accepted = self.accepted
        let requestURIs = self.requestURIs
        let idleClose = self.idleClose
        let healthStatus = self.healthStatus
        let children = self.children
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                children.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
                channel.closeFuture.whenComplete { _ in _ = children.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                    try channel.pipeline.syncOperations.addHandler(BackendHandler(idleClose: idleClose, requestURIs: requestURIs, healthStatus: healthStatus))
                }
            }
        if let unixPath {
            try? FileManager.default.removeItem(atPath: unixPath)
            channel = try await bootstrap.bind(unixDomainSocketPath: unixPath).get()
        } else {
            channel = try await bootstrap.bind(host: host, port: port).get()
        }
    }

    func stop() async {
        try? await channel?.close()
    }

    /// Dies as a crashed server does: the listener and every open connection close at once
    /// (requests in flight are cut), and connecting is refused from then on.
    func kill() async {
        try? await channel?.close()
        for child in children.withLockedValue({ Array($0.values) }) { try? await child.close() }
    }
}

/// The per-connection handler of `TestBackend`.
private final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var checksum: UInt64 = 0
    private var streamRemaining = 0
    private var streamContext: ChannelHandlerContext?
    private var idleTask: Scheduled<Void>?
    private var requestsOnConnection = 0
    private let idleClose: TimeAmount?
    private let requestURIs: NIOLockedValueBox<[String]>
    private let healthStatus: NIOLockedValueBox<Int>

    init(idleClose: TimeAmount?, requestURIs: NIOLockedValueBox<[String]>, healthStatus: NIOLockedValueBox<Int>) {
        self.idleClose = idleClose
        self.requestURIs = requestURIs
        self.healthStatus = healthStatus
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdle(context: context)
        context.fireChannelActive()
    }

    private func armIdle(context: ChannelHandlerContext) {
        idleTask?.cancel()
        guard let idleClose else { return }
        idleTask = context.eventLoop.scheduleTask(in: idleClose) { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.uri != "/health" { requestURIs.withLockedValue { $0.append(head.uri) } }
            requestsOnConnection += 1
            if head.uri.hasPrefix("/flaky"), requestsOnConnection > 1 {
                self.head = nil
                context.close(promise: nil)
                return
            }
            idleTask?.cancel()
            self.head = head
            bodyBytes = 0
            checksum = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            buffer.withUnsafeReadableBytes { raw in
                for byte in raw { checksum = checksum &* 31 &+ UInt64(byte) }
            }
        case .end:
            guard let head else { return }
            respond(to: head, context: context)
        }
    }

    private func query(_ name: String, in uri: String) -> String? {
        guard let components = URLComponents(string: uri) else { return nil }
        return components.queryItems?.first { $0.name == name }?.value
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        switch path {
        case "/health":
            let code = healthStatus.withLockedValue { $0 }
            send(status: HTTPResponseStatus(statusCode: code), headers: HTTPHeaders(), body: "health \(code)", context: context)
        case "/cookies":
            var headers = HTTPHeaders([("Content-Length", "2")])
            headers.add(name: "Set-Cookie", value: "a=1; Path=/")
            headers.add(name: "Set-Cookie", value: "b=2; Path=/")
            headers.add(name: "Set-Cookie", value: "c=3; Path=/")
            send(status: .ok, headers: headers, body: "ok", context: context)
        case "/stream":
            let total = Int(query("bytes", in: head.uri) ?? "0") ?? 0
            var headers = HTTPHeaders()
            if query("chunked", in: head.uri) == nil { headers.add(name: "Content-Length", value: String(total)) }
            if let type = query("type", in: head.uri) { headers.add(name: "Content-Type", value: type) }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            streamRemaining = total
            streamContext = context
            pumpStream(context: context)
        case "/delay":
            let ms = Int64(query("ms", in: head.uri) ?? "0") ?? 0
            context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
                self.send(status: .ok, headers: HTTPHeaders(), body: "delayed \(ms)", context: context)
            }
        case "/stall":
            let headers = HTTPHeaders([("Content-Length", "100")])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "partial")))), promise: nil)
        case "/status":
            let code = Int(query("code", in: head.uri) ?? "200") ?? 200
            send(status: HTTPResponseStatus(statusCode: code), headers: HTTPHeaders(), body: code == 204 || code == 304 ? "" : "status \(code)", context: context)
        case "/trailers":
            // A chunked body that ends with a trailer section.
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders()))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "abc")))), promise: nil)
            let trailers = HTTPHeaders([("X-Upstream-Trailer", "t1"), ("X-Secret-Trailer", "s")])
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).whenComplete { _ in self.armIdle(context: context) }
        case "/close":
            var headers = HTTPHeaders()
            headers.add(name: "Connection", value: "close")
            send(status: .ok, headers: headers, body: "bye", context: context, close: true)
        default:
            send(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]), body: echoJSON(head), context: context)
        }
    }

    private func echoJSON(_ head: HTTPRequestHead) -> String {
        let headers = head.headers.map { [$0.name, $0.value] }
        let object: [String: Any] = [
            "method": head.method.rawValue, "uri": head.uri, "version": "\(head.version.major).\(head.version.minor)",
            "headers": headers, "bodyBytes": bodyBytes, "checksum": String(checksum),
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private func send(status: HTTPResponseStatus, headers: HTTPHeaders, body: String, context: ChannelHandlerContext, close: Bool = false) {
        var headers = headers
        if !headers.contains(name: "Content-Length") && status.code != 204 && status.code != 304 {
            headers.add(name: "Content-Length", value: String(body.utf8.count))
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if close { context.close(promise: nil) } else { self.armIdle(context: context) }
        }
    }

    private func pumpStream(context: ChannelHandlerContext) {
        while streamRemaining > 0 && context.channel.isWritable {
            let size = min(streamRemaining, 64 * 1024)
            // Slices of one precomputed pattern: generating bytes one by one in a debug build
            // would make the backend, not the proxy, the bottleneck of streaming tests.
            let buffer = Self.pattern.getSlice(at: bodyPatternOffset % 251, length: size)!
            bodyPatternOffset += size
            streamRemaining -= size
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if streamRemaining == 0, streamContext != nil {
            streamContext = nil
            bodyPatternOffset = 0
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in self.armIdle(context: context) }
        }
    }

    private var bodyPatternOffset = 0

    /// Bytes `i % 251` for i in 0..<(64 KiB + 251): any 64 KiB window at offset `n % 251`
    /// continues the stream pattern of byte `n`.
    private static let pattern: ByteBuffer = {
        var buffer = ByteBuffer()
        buffer.writeBytes((0..<(64 * 1024 + 251)).map { UInt8(truncatingIfNeeded: $0 % 251) })
        return buffer
    }()

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, streamContext != nil { pumpStream(context: context) }
        context.fireChannelWritabilityChanged()
    }
}

/// Runs `body` with a fresh `TestBackend` on 127.0.0.1, stopping it afterwards.
func withBackend(idleClose: TimeAmount? = nil, _ body: (Int) async throws -> Void) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let backend = TestBackend(group: group, idleClose: idleClose)
    try await backend.start()
    do {
        try await body(backend.port)
    } catch {
        await backend.stop()
        try? await group.shutdownGracefully()
        throw error
    }
    await backend.stop()
    try? await group.shutdownGracefully()
}
