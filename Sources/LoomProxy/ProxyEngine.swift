import LoomConfig
import LoomFilters
import LoomWasm
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs the data path for one configuration: binds the listeners, owns the event loops and
/// their per-loop state, and shuts down gracefully.
///
/// One event loop per worker thread; the kernel hands accepted connections to loops in turn
/// and each connection, with its upstream pools, stays on its loop (DESIGN.md §4).
public final class ProxyEngine: Sendable {
    /// A bound listener, with the real address (an ephemeral port resolved).
    public struct BoundListener: Sendable {
        public var name: String
        public var address: SocketAddress
    }

    public let store: SnapshotStore
    private let group: MultiThreadedEventLoopGroup
    private let contexts: [LoopContext]
    private let logger: Logger
    private let accessLog: AccessLog
    private let serverChannels = NIOLockedValueBox<[Channel]>([])
    private let healthChecker: HealthChecker

    /// `filters`: the filter types this engine can run (the built-in ones; tests add theirs).
    /// `plugins`: the configuration's plugins, loaded (`PluginLoader.load`).
    public init(configuration: LoomConfiguration, logger: Logger, accessLog: AccessLog, filters: FilterRegistry = .builtIn, plugins: [PluginContext] = []) {
        let threads = configuration.server.workerThreads ?? System.coreCount
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        contexts = group.makeIterator().enumerated().map { LoopContext(eventLoop: $1, index: $0) }
        let caller = UpstreamCaller(upstreams: configuration.upstreams)
        let snapshot = ProxySnapshot(configuration, filters: filters, plugins: PluginSet(plugins, loops: contexts.count, caller: caller))
        store = SnapshotStore(snapshot)
        healthChecker = HealthChecker(upstreams: snapshot.upstreams, loops: contexts.map(\.eventLoop), logger: logger)
        self.logger = logger
        self.accessLog = accessLog
    }

    /// The per-loop state of `eventLoop`. A small fixed array: a linear scan beats hashing
    /// for a handful of loops.
    private static func context(for eventLoop: EventLoop, in contexts: [LoopContext]) -> LoopContext {
        contexts.first { $0.eventLoop === eventLoop } ?? contexts[0]
    }

    /// Binds every listener. Throws (after closing what was bound) if any bind fails.
    public func start() async throws -> [BoundListener] {
        let plugins = store.current.plugins
        for context in contexts {
            context.start()
            // Each loop starts its plugin instances before traffic arrives.
            context.eventLoop.execute {
                for runtime in plugins.runtimes.values { runtime.prepare(loop: context.index, eventLoop: context.eventLoop) }
            }
        }
        healthChecker.start()
        let configuration = store.current.configuration
        var bound: [BoundListener] = []
        do {
            for listener in configuration.listeners {
                let channel: Channel
                do {
                    channel = try await bind(listener)
                } catch {
                    throw BindError(listener: listener.name, address: "\(listener.host ?? "0.0.0.0"):\(listener.port)", reason: "\(error)")
                }
                serverChannels.withLockedValue { $0.append(channel) }
                guard let address = channel.localAddress else { continue }
                bound.append(BoundListener(name: listener.name, address: address))
                logger.info("listening", metadata: ["listener": .string(listener.name), "address": .string(Self.render(address))])
            }
        } catch {
            await closeListeners()
            throw error
        }
        return bound
    }

    /// Connections accepted per listener wake-up.
    static let acceptBatch: UInt = 256

    /// The first receive buffer of a client connection (NIO's default is 2 KiB).
    static let initialReceiveBuffer = 1024

    private func bind(_ listener: ListenerConfig) async throws -> Channel {
        let store = self.store
        let accessLog = self.accessLog
        let port = listener.port
        let bootstrap = ServerBootstrap(group: group)
            // A burst of new clients (1,000 at once in bench/run) must not wait in the kernel's
            // accept queue, or overflow it into SYN retransmits (1 s, then 3 s): a long queue,
            // and up to `acceptBatch` accepts per wake-up instead of NIO's default of 4, as
            // nginx's `multi_accept` does.
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: Self.acceptBatch)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // NIO keeps each channel's last receive buffer for reuse, so its initial size is
            // memory every idle keep-alive connection holds. Request heads are a few hundred
            // bytes; bodies grow the buffer as they stream (adaptively, up to 64 KiB).
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: Self.initialReceiveBuffer, maximum: 65536))
            .childChannelInitializer { [contexts] channel in
                let loop = Self.context(for: channel.eventLoop, in: contexts)
                return channel.eventLoop.makeCompletedFuture {
                    let handler = DownstreamHandler(loop: loop, store: store, listenerPort: port, accessLog: accessLog)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        var host = listener.host ?? "0.0.0.0"
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return try await bootstrap.bind(host: host, port: listener.port).get()
    }

    /// Stops accepting, lets in-flight requests finish for up to `gracePeriod`, then closes
    /// whatever is left and stops the event loops.
    public func shutdown(gracePeriod: Duration) async {
        await closeListeners()
        _ = try? await healthChecker.stop()?.get()
        let drained = EventLoopFuture.andAllComplete(contexts.map { $0.drain() }, on: group.any())
        let deadline = group.any().scheduleTask(in: TimeAmount(gracePeriod)) {}
        let finishedInTime = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let once = NIOLockedValueBox(false)
            @Sendable func finish(_ value: Bool) {
                let first = once.withLockedValue { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: value) }
            }
            drained.whenComplete { _ in finish(true) }
            deadline.futureResult.whenComplete { _ in finish(false) }
        }
        deadline.cancel()
        if !finishedInTime {
            var open = 0
            for context in contexts {
                open += (try? await context.eventLoop.submit { context.openConnectionCount }.get()) ?? 0
            }
            if open > 0 {
                logger.warning("shutdown deadline reached, closing connections", metadata: ["open": .stringConvertible(open)])
            }
        }
        _ = try? await EventLoopFuture.andAllComplete(contexts.map { $0.closeAll() }, on: group.any()).get()
        try? await group.shutdownGracefully()
    }

    /// A listener that could not be bound, named for the operator.
    public struct BindError: Error, CustomStringConvertible {
        public var listener: String
        public var address: String
        public var reason: String

        public var description: String { "listener \"\(listener)\" could not bind \(address): \(reason)" }
    }

    /// `127.0.0.1:8080`, `[::1]:8080` or the socket path, for logs.
    static func render(_ address: SocketAddress) -> String {
        switch address {
        case .v4: "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6: "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket: address.pathname ?? "unix"
        }
    }

    private func closeListeners() async {
        let channels = serverChannels.withLockedValue { channels in
            defer { channels = [] }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }
}
