import LoomConfig
import LoomFilters
import LoomIO
import LoomWasm
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

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
    private let group: IOEventLoopGroup
    private let contexts: [LoopContext]
    private let logger: Logger
    private let accessLog: AccessLog
    private let filters: FilterRegistry
    private let caller: UpstreamCaller
    /// The bound listening sockets by address (a reload binds, keeps or closes them by
    /// address, so renaming a listener keeps its socket).
    private let listeners = NIOLockedValueBox<[ListenerAddress: BoundChannel]>([:])
    private let healthChecker: NIOLockedValueBox<HealthChecker>
    /// The processes of supervised upstreams.
    let supervisor: ProcessSupervisor
    private let phaseBox = NIOLockedValueBox(Phase.starting)
    /// When the engine was made (for the admin API's uptime).
    public let startedAt = ContinuousClock.now
    public var loopCount: Int { contexts.count }

    /// Where the engine is in its life: `/ready` is true only while serving.
    public enum Phase: String, Sendable {
        case starting, serving, draining
    }

    public var phase: Phase { phaseBox.withLockedValue { $0 } }

    /// Where a listener binds: what decides whether a reload must open a new socket.
    private struct ListenerAddress: Hashable {
        var host: String
        var port: Int

        init(_ listener: ListenerConfig) {
            var host = listener.host ?? "0.0.0.0"
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.host = host
            self.port = listener.port
        }
    }

    private struct BoundChannel {
        var name: String
        var channel: Channel
        /// The TLS connections accepted from now on get (nil: plain HTTP); a reload swaps it.
        var tls: NIOLockedValueBox<ListenerTLS?>
    }

    /// A listener's TLS settings could not be loaded.
    public struct TLSError: Error, CustomStringConvertible {
        public var listener: String
        public var reason: String

        public var description: String { "listener \"\(listener)\": \(reason)" }
    }

    /// The TLS of every `https` listener of `listeners`, loaded from its files.
    private static func loadTLS(_ listeners: [ListenerConfig]) throws(TLSError) -> [ListenerAddress: ListenerTLS] {
        var loaded: [ListenerAddress: ListenerTLS] = [:]
        for listener in listeners where listener.protocol.usesTLS {
            guard let settings = listener.tls else { throw TLSError(listener: listener.name, reason: "an https listener needs tls settings") }
            switch Result(catching: { () throws(ListenerTLS.LoadError) in try ListenerTLS.load(settings) }) {
            case .success(let tls): loaded[ListenerAddress(listener)] = tls
            case .failure(let error): throw TLSError(listener: listener.name, reason: error.description)
            }
        }
        return loaded
    }

    /// Every bound listener's TLS from now on (`tls`, by address): new connections get it,
    /// open ones keep the handshake they made.
    private func installTLS(_ tls: [ListenerAddress: ListenerTLS]) {
        listeners.withLockedValue { bound in
            for (address, listener) in bound { listener.tls.withLockedValue { $0 = tls[address] } }
        }
    }

    /// `filters`: the filter types this engine can run (the built-in ones; tests add theirs).
    /// `plugins`: the configuration's plugins, loaded (`PluginLoader.load`).
    /// `metrics`: where the event loops record request metrics (nil: not recorded).
    public init(
        configuration: LoomConfiguration, logger: Logger, accessLog: AccessLog, filters: FilterRegistry = .builtIn, plugins: [PluginContext] = [],
        metrics: LoomMetrics? = nil
    ) throws {
        let threads = configuration.server.workerThreads ?? System.coreCount
        group = try IOEventLoopGroup(numberOfThreads: max(1, threads))
        contexts = group.makeIterator().enumerated().map { LoopContext(eventLoop: $1, index: $0, metrics: metrics, perTick: true) }
        caller = UpstreamCaller()
        let snapshot = ProxySnapshot(configuration, filters: filters, plugins: PluginSet(plugins, loops: contexts.count, caller: caller))
        caller.update(snapshot)
        let store = SnapshotStore(snapshot)
        self.store = store
        healthChecker = NIOLockedValueBox(HealthChecker(upstreams: snapshot.upstreams, loops: contexts.map(\.eventLoop), logger: logger))
        supervisor = ProcessSupervisor(eventLoop: group.next(), logger: logger) { name in store.current.upstreams.first { $0.name == name } }
        self.filters = filters
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
        let snapshot = store.current
        for context in contexts { context.start() }
        prepare(snapshot.plugins.runtimes.values)
        healthChecker.withLockedValue { $0 }.start()
        supervisor.start(snapshot.configuration)
        do {
            let tls = try Self.loadTLS(snapshot.configuration.listeners)
            try await bindMissing(snapshot.configuration.listeners, tls: tls)
        } catch {
            await closeListeners()
            throw error
        }
        phaseBox.withLockedValue { $0 = .serving }
        return boundListeners
    }

    /// The listeners bound now, in configuration order.
    public var boundListeners: [BoundListener] {
        let bound = listeners.withLockedValue { $0 }
        return store.current.configuration.listeners.compactMap { listener in
            bound[ListenerAddress(listener)]?.channel.localAddress.map { BoundListener(name: listener.name, address: $0) }
        }
    }

    /// Each loop starts its instances of `runtimes` before traffic arrives (the tasks run
    /// before any connection the loop accepts later).
    private func prepare(_ runtimes: some Collection<PluginRuntime>) {
        guard !runtimes.isEmpty else { return }
        let runtimes = Array(runtimes)
        for context in contexts {
            context.eventLoop.execute {
                for runtime in runtimes { runtime.prepare(loop: context.index, eventLoop: context.eventLoop) }
            }
        }
    }

    /// Binds the listeners of `wanted` whose address has no socket yet. On a failure, the
    /// sockets this call opened are closed again and the error names the listener.
    /// A new socket's connections get their TLS from `tls` (an existing one's changes with
    /// `installTLS`).
    private func bindMissing(_ wanted: [ListenerConfig], tls: [ListenerAddress: ListenerTLS]) async throws {
        var opened: [ListenerAddress] = []
        for listener in wanted {
            let address = ListenerAddress(listener)
            if let existing = listeners.withLockedValue({ $0[address] }) {
                listeners.withLockedValue { $0[address] = BoundChannel(name: listener.name, channel: existing.channel, tls: existing.tls) }
                continue
            }
            let channel: Channel
            let tlsBox = NIOLockedValueBox(tls[address])
            do {
                channel = try await bind(listener, tls: tlsBox)
            } catch {
                for address in opened {
                    if let bound = listeners.withLockedValue({ $0.removeValue(forKey: address) }) { try? await bound.channel.close() }
                }
                throw BindError(listener: listener.name, address: "\(listener.host ?? "0.0.0.0"):\(listener.port)", reason: "\(error)")
            }
            listeners.withLockedValue { $0[address] = BoundChannel(name: listener.name, channel: channel, tls: tlsBox) }
            opened.append(address)
            if let local = channel.localAddress {
                logger.info("listening", metadata: ["listener": .string(listener.name), "address": .string(Self.render(local))])
            }
        }
    }

    /// Each loop's counts, summed (one hop to every loop).
    /// A loop that does not answer within a second (stuck, or shut down) is left out rather
    /// than waited for.
    func sample() async -> LoopSample {
        var total = LoopSample()
        for context in contexts {
            if let sample = await Self.value(of: context.eventLoop.submit { context.sample() }, within: .seconds(1)) { total.add(sample) }
        }
        return total
    }

    /// Whether every event loop runs a task within `timeout` (a loop stuck in a long
    /// computation would not): the liveness the admin API's `/health` reports.
    func loopsRespond(within timeout: Duration) async -> Bool {
        let answers = contexts.map { context in context.eventLoop.submit {} }
        return await Self.value(of: EventLoopFuture.andAllComplete(answers, on: group.any()), within: timeout) != nil
    }

    /// `future`'s value if it succeeds within `timeout`, else nil. The timer is a task, not
    /// an event-loop timer: the loop it would run on may be the one that is stuck.
    private static func value<Value: Sendable>(of future: EventLoopFuture<Value>, within timeout: Duration) async -> Value? {
        await withCheckedContinuation { continuation in
            let once = NIOLockedValueBox(false)
            @Sendable func finish(_ value: Value?) {
                let first = once.withLockedValue { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: value) }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { finish(nil) }
            }
            future.whenComplete { result in
                finish(try? result.get())
                timer.cancel()
            }
        }
    }

    /// Applies a validated configuration, with its plugins loaded (unchanged ones being the
    /// running contexts, `PluginLoader.reload`), and returns the changes it made.
    ///
    /// New listeners are bound first: if one cannot be, nothing changes and the error says
    /// which. Then the new snapshot is swapped in; requests in flight finish on the one they
    /// started with. Upstreams that stay keep their health state and pools; health checks
    /// of endpoints whose state carried over keep running, the others start; sockets no
    /// listener wants any more close (their open connections are served to the end);
    /// plugins dropped or replaced stop their timers. Not safe to call concurrently
    /// (`ConfigReloader` serializes calls).
    public func reload(to configuration: LoomConfiguration, plugins: [PluginContext]) async throws -> [ConfigChange] {
        let old = store.current
        var changes = ConfigDiff.changes(from: old.configuration, to: configuration)
        let pluginSet = PluginSet(plugins, loops: contexts.count, caller: caller, previous: old.plugins)
        // A plugin whose module file changed under the same configuration is a change too.
        for plugin in plugins where old.plugins.runtimes[plugin.name].map({ $0.plugin !== plugin && $0.plugin.config == plugin.config }) == true {
            changes.append(.plugin(.replace(plugin.config)))
        }
        let tls = try Self.loadTLS(configuration.listeners)
        // Certificate files that changed under the same configuration are a change too.
        let installed = listeners.withLockedValue { bound in bound.mapValues { $0.tls.withLockedValue { $0 } } }
        for listener in configuration.listeners {
            let address = ListenerAddress(listener)
            guard let new = tls[address], let old = installed[address] ?? nil, old.settings == new.settings, old.material != new.material,
                  !changes.contains(where: { if case .listener(let edit) = $0 { edit.name == listener.name } else { false } })
            else { continue }
            changes.append(.listener(.replace(listener)))
        }
        guard !changes.isEmpty else { return [] }
        guard phase == .serving else { throw ReloadRefused(reason: "loom is \(phase.rawValue), not serving") }

        // New plugins get their instance on every loop before any request can reach them (an
        // instance made by a request would have no loop for its timers and calls).
        let fresh = pluginSet.runtimes.values.filter { runtime in old.plugins.runtimes[runtime.plugin.name] !== runtime }
        do {
            if !fresh.isEmpty {
                let prepared = contexts.map { context in
                    context.eventLoop.submit { for runtime in fresh { runtime.prepare(loop: context.index, eventLoop: context.eventLoop) } }
                }
                try await EventLoopFuture.andAllSucceed(prepared, on: group.any()).get()
            }
            try await bindMissing(configuration.listeners, tls: tls)
        } catch {
            for runtime in fresh { runtime.retire() }
            throw error
        }
        let snapshot = ProxySnapshot(configuration, previous: old, filters: filters, plugins: pluginSet)
        caller.update(snapshot)
        store.replace(with: snapshot)
        installTLS(tls)

        let wanted = Set(configuration.listeners.map(ListenerAddress.init))
        let unwanted = listeners.withLockedValue { bound in
            let gone = bound.filter { !wanted.contains($0.key) }
            for key in gone.keys { bound[key] = nil }
            return gone.values
        }
        for bound in unwanted {
            logger.info("listener closed", metadata: ["listener": .string(bound.name)])
            try? await bound.channel.close()
        }

        // Checks of endpoints whose health state carried over keep running (their counts
        // toward a verdict too); the others stop and new ones start.
        let checker = healthChecker.withLockedValue { current in
            let next = HealthChecker(upstreams: snapshot.upstreams, loops: contexts.map(\.eventLoop), logger: logger, previous: current)
            current.stop(keeping: next)
            current = next
            return next
        }
        checker.start()
        supervisor.update(configuration)

        for runtime in old.plugins.dropped(by: pluginSet) { runtime.retire() }
        for context in contexts {
            context.eventLoop.execute { context.reconcilePools(with: snapshot.upstreams, previous: old.upstreams) }
        }
        return changes
    }

    /// A reload asked for while the engine is not serving (starting, or shutting down).
    public struct ReloadRefused: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { "reload refused: \(reason)" }
    }

    /// Connections accepted per listener wake-up.
    static let acceptBatch: UInt = 256

    /// The first receive buffer of a client connection (NIO's default is 2 KiB).
    static let initialReceiveBuffer = 1024

    private func bind(_ listener: ListenerConfig, tls: NIOLockedValueBox<ListenerTLS?>) async throws -> Channel {
        let store = self.store
        let accessLog = self.accessLog
        let port = listener.port
        let listenerProtocol = listener.protocol
        let bootstrap = IOServerBootstrap(group: group)
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
                let listenerTLS = tls.withLockedValue { $0 }
                return channel.eventLoop.makeCompletedFuture {
                    var connectionTLS: ConnectionTLS?
                    if let listenerTLS {
                        let handshake = NIOSSLServerHandler(context: listenerTLS.context)
                        try channel.pipeline.syncOperations.addHandler(handshake)
                        connectionTLS = ConnectionTLS(handler: handshake, identityHeader: listenerTLS.settings.clientIdentityHeader)
                    }
                    func downstream(isHTTP2Stream: Bool = false) -> DownstreamHandler {
                        DownstreamHandler(
                            loop: loop, store: store, listenerPort: port, accessLog: accessLog, tls: connectionTLS, isHTTP2Stream: isHTTP2Stream)
                    }
                    guard listenerProtocol != .http else {
                        try channel.pipeline.syncOperations.addHandler(downstream())
                        return
                    }
                    let snapshot = store.current
                    // Cleartext waits for a whole first head (the preface or an HTTP/1.1 head):
                    // request_header's bound; TLS for a handshake: the idle timeout's.
                    let timeouts = snapshot.configuration.server.timeouts
                    let selector = ProtocolSelector(
                        signal: listenerTLS == nil ? .preface : .alpn,
                        timeout: TimeAmount(listenerTLS == nil ? timeouts.requestHeader : timeouts.idle), limits: snapshot.requestLimits
                    ) { channel, version in
                        switch version {
                        case .http1:
                            try channel.pipeline.syncOperations.addHandler(downstream())
                            return
                        case .http2:
                            break
                        case .http2Upgrade(let firstStream):
                            try channel.pipeline.syncOperations.addHandler(H2CUpgradeSplicer(firstStream: firstStream))
                        }
                        try HTTP2Connection.configure(channel, loop: loop, limits: HTTP2Connection.Limits(snapshot)) { stream in
                            try stream.pipeline.syncOperations.addHandler(downstream(isHTTP2Stream: true))
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(selector)
                }
            }
        return try await bootstrap.bind(host: ListenerAddress(listener).host, port: listener.port).get()
    }

    /// Stops accepting, lets in-flight requests finish for up to `gracePeriod`, then closes
    /// whatever is left and stops the event loops.
    public func shutdown(gracePeriod: Duration) async {
        phaseBox.withLockedValue { $0 = .draining }
        await closeListeners()
        healthChecker.withLockedValue { $0 }.stop(keeping: nil)
        let drained = EventLoopFuture.andAllComplete(contexts.map { $0.drain() }, on: group.any())
        if await Self.value(of: drained, within: gracePeriod) == nil {
            var open = 0
            for context in contexts {
                open += (try? await context.eventLoop.submit { context.openConnectionCount }.get()) ?? 0
            }
            if open > 0 {
                logger.warning("shutdown deadline reached, closing connections", metadata: ["open": .stringConvertible(open)])
            }
        }
        _ = try? await EventLoopFuture.andAllComplete(contexts.map { $0.closeAll() }, on: group.any()).get()
        // Traffic has drained: the processes it went to stop, dependents first.
        try? await supervisor.shutdown().get()
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
        let bound = listeners.withLockedValue { bound in
            defer { bound = [:] }
            return bound.values
        }
        for listener in bound { try? await listener.channel.close() }
    }
}
