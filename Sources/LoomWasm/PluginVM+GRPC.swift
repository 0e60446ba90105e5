import LoomConfig
import LoomHTTP
import NIOCore

/// `proxy_grpc_call`, `proxy_grpc_stream`, `proxy_grpc_send`, `proxy_grpc_close` and
/// `proxy_grpc_cancel`, and the callbacks that report on them, with Envoy's semantics:
/// - the callbacks go to the root context, as for HTTP calls (the SDKs find the calling
///   stream by the token);
/// - a unary call reports its reply with `on_grpc_receive` alone, or its failure with
///   `on_grpc_close` alone (status and message through `proxy_get_status`);
/// - a stream reports initial metadata, each message, trailing metadata, then
///   `on_grpc_close`; `proxy_grpc_close` half-closes it, `proxy_grpc_cancel` resets it and
///   nothing more is reported;
/// - tokens of unary calls are odd and those of streams even, so `proxy_grpc_send` can
///   tell a unary call (BAD_ARGUMENT) from a token that is gone (NOT_FOUND).
extension PluginVM {
    struct GRPCCall {
        /// The context that opened it: once that context is gone, the call is cancelled.
        let context: UInt32
        let stream: any PluginGRPCStream
        let unary: Bool
        var localClosed = false
        var remoteClosed = false
        /// A unary call's reply, delivered when the call closes with OK.
        var reply: [UInt8]?
    }

    /// What the gRPC callback running may read (buffer 5, maps 4 and 5).
    enum GRPCDelivery {
        case message([UInt8])
        case initialMetadata(HeaderMap)
        case trailingMetadata(HeaderMap)
    }

    /// Fields the host writes on a call, or that HTTP/2 forbids: a plugin's metadata may
    /// not name them (BAD_ARGUMENT).
    static let reservedGRPCMetadata: Set<String> = [
        "host", "te", "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    ]

    func grpcCall(_ a: HostArguments) throws -> ProxyStatus {
        guard let message = memory.bytes(at: a.u32(8), count: a.u32(9)) else { return .invalidMemoryAccess }
        charge(bytes: message.count)
        let timeout = min(Duration.milliseconds(max(1, Int64(a.u32(10)))), Self.maxCallTimeout)
        return try openGRPC(a, tokenAt: a.u32(11), unary: (message, timeout))
    }

    func grpcStream(_ a: HostArguments) throws -> ProxyStatus {
        try openGRPC(a, tokenAt: a.u32(8), unary: nil)
    }

    /// Opens a call from arguments 0…7 (upstream, service, method, metadata); `unary` has
    /// a unary call's message and timeout.
    private func openGRPC(_ a: HostArguments, tokenAt token: UInt32, unary: (message: [UInt8], timeout: Duration)?) throws -> ProxyStatus {
        guard let upstream = memory.string(at: a.u32(0), count: a.u32(1)),
              let service = memory.string(at: a.u32(2), count: a.u32(3)),
              let method = memory.string(at: a.u32(4), count: a.u32(5)),
              let metadata = memory.withBytes(at: a.u32(6), count: a.u32(7), { HeaderMapCodec.decode($0) }),
              memory.contains(token, 4)
        else { return .invalidMemoryAccess }
        charge(bytes: Int(a.u32(7)))
        guard let metadata, let loop = environment.eventLoop, let caller = environment.caller, grpcCalls.count < Self.maxPendingCalls,
              Self.isValidPathSegment(service), Self.isValidPathSegment(method),
              metadata.allSatisfy({ Self.isValidField($0.name, $0.value) && !$0.name.hasPrefix(":") }),
              !metadata.contains(where: { Self.reservedGRPCMetadata.contains($0.name.lowercased()) })
        else { return .badArgument }
        let request = PluginGRPCRequest(
            service: service, method: method, metadata: metadata.map { HeaderPair(name: $0.name, value: $0.value) }, timeout: unary?.timeout)
        let id = allocateGRPCToken(unary: unary != nil)
        let box = self.box
        let opened = caller.openGRPC(request, upstream: upstream, on: loop) { event in
            // Delivered after the current guest call returns, never inside it.
            loop.execute { box.vm?.grpcEvent(id, event) }
        }
        switch opened {
        case .failure(.unknownUpstream):
            return .parseFailure
        case .failure(.notHTTP2):
            plugin.log(.warn, "gRPC call to upstream \(upstream) refused: it speaks HTTP/1.1 (gRPC needs protocol h2, h2c or grpc)")
            return .badArgument
        case .success(let stream):
            var call = GRPCCall(context: effectiveContext, stream: stream, unary: unary != nil)
            if let unary {
                stream.send(unary.message, endStream: true)
                call.localClosed = true
            }
            grpcCalls[id] = call
        }
        _ = memory.writeU32(id, at: token)
        return .ok
    }

    /// The next free token of the kind asked for: odd for unary calls, even for streams.
    private func allocateGRPCToken(unary: Bool) -> UInt32 {
        repeat {
            nextGRPCToken &+= 1
        } while nextGRPCToken == 0 || (nextGRPCToken & 1 == 1) != unary || grpcCalls[nextGRPCToken] != nil
        return nextGRPCToken
    }

    /// A service or method name: a non-empty run of characters a path segment may hold.
    private static func isValidPathSegment(_ text: String) -> Bool {
        !text.isEmpty && !text.contains("/") && HTTPFieldSyntax.isValidOriginTarget("/" + text)
    }

    func grpcSend(_ a: HostArguments) throws -> ProxyStatus {
        guard let message = memory.bytes(at: a.u32(1), count: a.u32(2)) else { return .invalidMemoryAccess }
        charge(bytes: message.count)
        let id = a.u32(0)
        guard id & 1 == 0 else { return .badArgument }
        guard var call = grpcCalls[id] else { return .notFound }
        // The plugin's half of the stream already ended: nothing more may go.
        guard !call.localClosed else { return .badArgument }
        let end = a.u32(3) != 0
        // After the upstream closed, as in Envoy, the send is accepted and goes nowhere.
        if !call.remoteClosed { call.stream.send(message, endStream: end) }
        call.localClosed = end
        grpcCalls[id] = call.localClosed && call.remoteClosed ? nil : call
        return .ok
    }

    /// Ends a unary call (cancelled), or half-closes a stream, which still reports its
    /// response and close.
    func grpcClose(_ a: HostArguments) throws -> ProxyStatus {
        let id = a.u32(0)
        guard var call = grpcCalls[id] else { return .notFound }
        if call.unary {
            call.stream.cancel()
            grpcCalls[id] = nil
            return .ok
        }
        if !call.localClosed && !call.remoteClosed { call.stream.close() }
        call.localClosed = true
        grpcCalls[id] = call.remoteClosed ? nil : call
        return .ok
    }

    func grpcCancel(_ a: HostArguments) throws -> ProxyStatus {
        guard let call = grpcCalls.removeValue(forKey: a.u32(0)) else { return .notFound }
        call.stream.cancel()
        return .ok
    }

    /// Cancels the calls `context` opened (its request ended), or every call when nil.
    func cancelGRPCCalls(of context: UInt32?) {
        for (id, call) in grpcCalls where context == nil || call.context == context {
            call.stream.cancel()
            grpcCalls[id] = nil
        }
    }

    func grpcEvent(_ id: UInt32, _ event: PluginGRPCEvent) {
        guard var call = grpcCalls[id] else { return }
        guard broken == nil, call.context == rootID || streams[call.context] != nil else {
            call.stream.cancel()
            grpcCalls[id] = nil
            return
        }
        switch event {
        case .initialMetadata(let fields):
            guard !call.unary else { return }
            deliverGRPC(.grpcReceiveInitialMetadata, id, fields.count, .initialMetadata(Self.map(fields)), context: call.context)
        case .message(let message):
            guard !call.unary else {
                // As Envoy's unary client: the last message is the reply.
                call.reply = message
                grpcCalls[id] = call
                return
            }
            deliverGRPC(.grpcReceive, id, message.count, .message(message), context: call.context)
        case .trailingMetadata(let fields):
            guard !call.unary else { return }
            deliverGRPC(.grpcReceiveTrailingMetadata, id, fields.count, .trailingMetadata(Self.map(fields)), context: call.context)
        case .close(var status, var message):
            call.remoteClosed = true
            grpcCalls[id] = call.unary || call.localClosed ? nil : call
            if call.unary, status == 0 {
                if let reply = call.reply {
                    deliverGRPC(.grpcReceive, id, reply.count, .message(reply), context: call.context)
                    return
                }
                (status, message) = (13, "the upstream's reply had no message")
            }
            lastStatus = (status, message)
            defer { lastStatus.message = "" }
            deliverGRPC(.grpcClose, id, Int(status), nil, context: call.context)
        }
    }

    private static func map(_ fields: [HeaderPair]) -> HeaderMap {
        HeaderMap(fields.map { ($0.name, $0.value) })
    }

    /// Calls `callback(root, id, argument)` with `delivery` readable meanwhile; a failure
    /// fails the request the call was made for, if it is paused.
    private func deliverGRPC(_ callback: PluginCallback, _ id: UInt32, _ argument: Int, _ delivery: GRPCDelivery?, context: UInt32) {
        grpcDelivery = delivery
        defer { grpcDelivery = nil }
        do {
            _ = try streamCallback(callback, context: rootID, [UInt64(id), UInt64(argument)])
        } catch {
            failAsync(callback, error, context: context)
        }
    }

    /// The message `on_grpc_receive` is reading (buffer 5).
    var grpcMessage: [UInt8]? {
        if case .message(let bytes) = grpcDelivery { return bytes }
        return nil
    }

    /// The metadata map `type` (4 or 5) while its callback runs.
    func grpcMetadata(_ type: ProxyMapType) -> HeaderMap? {
        switch (type, grpcDelivery) {
        case (.grpcReceiveInitialMetadata, .initialMetadata(let map)?), (.grpcReceiveTrailingMetadata, .trailingMetadata(let map)?): map
        default: nil
        }
    }
}
