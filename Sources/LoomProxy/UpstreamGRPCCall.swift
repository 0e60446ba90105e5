import LoomConfig
import LoomWasm
import NIOCore
import NIOHTTP1

/// One gRPC call a plugin made (`proxy_grpc_call` or `proxy_grpc_stream`), on a stream of a
/// fresh HTTP/2 connection to the upstream (see `UpstreamCaller.openHTTP2Stream`): the
/// request head, framed messages and the half-close go out as the plugin sends them; the
/// response comes back as `PluginGRPCEvent`s, ending with exactly one `close` unless the
/// plugin cancelled.
///
/// Statuses loom gives itself, as gRPC clients do: UNAVAILABLE when the connection fails or
/// the call is reset, DEADLINE_EXCEEDED past a unary call's timeout, the gRPC project's
/// mapping of any HTTP status but 200, INTERNAL for a malformed response,
/// RESOURCE_EXHAUSTED for a message over `PluginGRPCRequest.messageLimit`.
///
/// Lives on its event loop; the plugin's calls (`send`, `close`, `cancel`) come from there
/// too, except a `cancel` from an instance released elsewhere, which hops.
final class UpstreamGRPCCall: ChannelInboundHandler, PluginGRPCStream, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let eventLoop: EventLoop
    private let events: @Sendable (PluginGRPCEvent) -> Void
    /// The stream, once open; what the plugin sends meanwhile waits in `waiting`.
    private var channel: Channel?
    private var waiting: [HTTPClientRequestPart]
    /// A close was reported, or the plugin cancelled: nothing more goes either way.
    private var ended = false
    private var reader = GRPCMessageReader(limit: PluginGRPCRequest.messageLimit)
    private var deadline: Scheduled<Void>?

    init(_ request: PluginGRPCRequest, authority: String, eventLoop: EventLoop, events: @escaping @Sendable (PluginGRPCEvent) -> Void) {
        self.eventLoop = eventLoop
        self.events = events
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/\(request.service)/\(request.method)")
        head.headers.add(name: "host", value: authority)
        head.headers.add(name: "content-type", value: "application/grpc")
        head.headers.add(name: "te", value: "trailers")
        if let timeout = request.timeout {
            head.headers.add(name: "grpc-timeout", value: "\(timeout.inMilliseconds)m")
        }
        for field in request.metadata {
            if field.name.lowercased() == "content-type" || field.name.lowercased() == "grpc-timeout" {
                head.headers.replaceOrAdd(name: field.name, value: field.value)
            } else {
                head.headers.add(name: field.name, value: field.value)
            }
        }
        waiting = [.head(head)]
        if let timeout = request.timeout {
            deadline = eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
                finish(.deadlineExceeded, "the call's deadline of \(timeout.inMilliseconds) ms passed")
            }
        }
    }

    /// The stream is open: what waited goes out.
    func attach(_ channel: Channel) {
        guard !ended else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        for part in waiting { channel.write(part, promise: nil) }
        waiting = []
        channel.flush()
    }

    /// No stream: the connection (or its TLS handshake) failed.
    func failedToOpen(_ error: any Error) {
        finish(.unavailable, "could not connect to the upstream: \(error)")
    }

    // MARK: - PluginGRPCStream

    func send(_ message: [UInt8], endStream: Bool) {
        write(.body(.byteBuffer(GRPCMessageReader.frame(message))))
        if endStream { write(.end(nil)) }
    }

    func close() {
        write(.end(nil))
    }

    func cancel() {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.cancel() }
            return
        }
        guard !ended else { return }
        ended = true
        deadline?.cancel()
        // Closing an open stream resets it (RST_STREAM CANCEL); the connection follows.
        channel?.close(promise: nil)
    }

    private func write(_ part: HTTPClientRequestPart) {
        guard !ended else { return }
        guard let channel else {
            waiting.append(part)
            return
        }
        channel.writeAndFlush(part, promise: nil)
    }

    // MARK: - The response

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ended else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            // An informational head (100 Continue, 103 Early Hints) is not the response.
            guard head.status.code >= 200 else { return }
            // As Envoy's gRPC client: initial metadata comes first, always; a trailers-only
            // response (its one HEADERS carries the status) has none, and its status is
            // grpc-status whatever the HTTP status (http-grpc-status-mapping.md).
            let trailersOnly = head.headers.contains(name: "grpc-status")
            events(.initialMetadata(trailersOnly ? [] : Self.fields(head.headers)))
            if trailersOnly { return close(with: head.headers) }
            guard head.status == .ok else {
                return finish(GRPC.status(httpStatus: Int(head.status.code)), "the upstream answered HTTP \(head.status.code)")
            }
        case .body(let bytes):
            let read = reader.read(bytes)
            // The plugin may cancel from a message's callback: nothing follows then.
            for message in read.messages where !ended { events(.message(message)) }
            switch read.failure {
            case nil: break
            case .compressed: finish(.internal, "the upstream sent a compressed message, which loom did not ask for")
            case .tooLarge(let size): finish(.resourceExhausted, "a message of \(size) bytes is over the limit of \(PluginGRPCRequest.messageLimit)")
            }
        case .end(let trailers):
            guard reader.isEmpty else { return finish(.internal, "the response ended inside a message") }
            close(with: trailers ?? [:])
        }
    }

    /// The trailing metadata, then the status it carries.
    private func close(with trailers: HTTPHeaders) {
        events(.trailingMetadata(Self.fields(trailers)))
        guard let code = trailers.first(name: "grpc-status").flatMap({ UInt32($0) }) else {
            return finish(.internal, "the upstream sent no grpc-status")
        }
        finish(code: code, GRPC.percentDecoded(trailers.first(name: "grpc-message") ?? ""))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.unavailable, "the upstream reset the call")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.unavailable, "the call failed: \(error)")
        context.close(promise: nil)
    }

    private func finish(_ status: GRPC.Status, _ message: String) {
        finish(code: UInt32(status.rawValue), message)
    }

    private func finish(code: UInt32, _ message: String) {
        guard !ended else { return }
        ended = true
        deadline?.cancel()
        events(.close(status: code, message: message))
        channel?.close(promise: nil)
    }

    private static func fields(_ headers: HTTPHeaders) -> [HeaderPair] {
        headers.map { HeaderPair(name: $0.name, value: $0.value) }
    }
}
