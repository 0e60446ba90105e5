import LoomConfig
import LoomWasm
import Logging
import NIOPosix

/// The one reload path every source goes through (the file watch, SIGHUP, the admin API):
/// read and validate the configuration again, load its plugins (keeping unchanged ones),
/// and hand it to the engine, which applies the differences (`ProxyEngine.reload`).
///
/// Reloads run one at a time, in the order they were asked for, on a thread of their own
/// (reading files, compiling plugins and the route table take a while: neither the admin
/// API's probes nor the global concurrency pool wait for them). An invalid configuration is
/// rejected whole, with its errors, and the running one stays.
public actor ConfigReloader {
    public enum Outcome: Sendable, Equatable {
        /// The configuration changed; `generation` counts applied reloads (1 at start).
        case applied(generation: Int, changes: [ConfigChange])
        case unchanged(generation: Int)
        case rejected([String])
    }

    /// Where the configuration is read from.
    public enum Source: Sendable {
        case file(String)
        /// Simple mode: the process's environment, which cannot change, so there is
        /// nothing to reload.
        case environment
    }

    private let source: Source
    private let environment: [String: String]
    private let engine: ProxyEngine
    private let logger: Logger
    private let pluginLog: @Sendable (String) -> @Sendable (String, String) -> Void
    private let metrics: LoomMetrics?
    /// A reload is running; the ones asked for meanwhile wait here, in order.
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    public private(set) var generation = 1

    /// `pluginLog`: the log sink of the plugin with the given name.
    public init(
        source: Source, environment: [String: String], engine: ProxyEngine, logger: Logger, metrics: LoomMetrics? = nil,
        pluginLog: @escaping @Sendable (String) -> @Sendable (String, String) -> Void
    ) {
        self.metrics = metrics
        executor = EventLoopTaskExecutor(thread.next())
        self.source = source
        self.environment = environment
        self.engine = engine
        self.logger = logger
        self.pluginLog = pluginLog
    }

    /// Reloads after the ones already asked for; `trigger` names the source in the log.
    ///
    /// (The queue is explicit: an actor lets another call in while this one awaits the
    /// engine, and reloads must not interleave.)
    public nonisolated func reload(trigger: String) async -> Outcome {
        await withTaskExecutorPreference(executor) { await self.serializedReload(trigger: trigger) }
    }

    /// The reload thread, and the executor that runs this actor and the engine's reload
    /// work there.
    private let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private nonisolated let executor: EventLoopTaskExecutor

    private func serializedReload(trigger: String) async -> Outcome {
        await enter()
        defer { leave() }
        guard !closed else { return .rejected(["loom is shutting down"]) }
        let outcome = await perform(trigger: trigger)
        metrics?.reloaded(outcome)
        return outcome
    }

    /// Refuses reloads from now on, after waiting for the one running (shutdown calls this
    /// before it closes the listeners, so no reload binds them again).
    public func close() async {
        closed = true
        await enter()
        leave()
        let thread = self.thread
        Task.detached { try? await thread.shutdownGracefully() }
    }

    private var closed = false

    /// Waits for the reloads ahead; `leave` hands the turn to the next.
    private func enter() async {
        if busy {
            await withCheckedContinuation { waiting.append($0) }  // resumed with `busy` handed over
        }
        busy = true
    }

    private func leave() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    private func perform(trigger: String) async -> Outcome {
        guard case .file(let path) = source else {
            logger.notice("reload: simple mode has no configuration file to read again", metadata: ["trigger": .string(trigger)])
            return .unchanged(generation: generation)
        }
        let result = ConfigLoader.load(path: path, environment: environment, pluginCheck: PluginLoader.check)
        let errors = result.diagnostics.filter { $0.severity == .error }.map(\.description)
        guard !result.hasFatal, let configuration = result.configuration else {
            logger.error("reload rejected: the configuration has errors; the running one stays", metadata: [
                "trigger": .string(trigger), "errors": .array(errors.map { .string($0) }),
            ])
            return .rejected(errors.isEmpty ? ["the configuration could not be loaded"] : errors)
        }
        let running = engine.store.current.plugins
        let plugins: [PluginContext]
        switch Self.loadPlugins(configuration, previous: running, pluginLog: pluginLog) {
        case .failure(let problem):
            logger.error("reload rejected: a plugin failed to load", metadata: ["trigger": .string(trigger), "error": .string(problem.description)])
            return .rejected([problem.description])
        case .success(let loaded): plugins = loaded
        }
        let before = engine.store.current.configuration
        do {
            let changes = try await engine.reload(to: configuration, plugins: plugins)
            for setting in Self.restartOnlySettings(before, configuration) {
                logger.warning("reload: \(setting) changed, which takes effect at the next restart", metadata: ["trigger": .string(trigger)])
            }
            guard !changes.isEmpty else {
                logger.debug("reload: nothing changed", metadata: ["trigger": .string(trigger)])
                return .unchanged(generation: generation)
            }
            generation += 1
            logger.notice("configuration reloaded", metadata: [
                "trigger": .string(trigger), "generation": .stringConvertible(generation),
                "changes": .array(changes.map { .string($0.description) }),
            ])
            return .applied(generation: generation, changes: changes)
        } catch {
            logger.error("reload rejected; the running configuration stays", metadata: ["trigger": .string(trigger), "error": .string("\(error)")])
            return .rejected(["\(error)"])
        }
    }

    /// The settings a running process keeps until it restarts (threads are its event loops,
    /// logging is set up once, the watch and the admin listener are started once), named
    /// when they differ. (The admin token applies at once: it is read per request.)
    static func restartOnlySettings(_ old: LoomConfiguration, _ new: LoomConfiguration) -> [String] {
        var names: [String] = []
        let (was, now) = (old.server, new.server)
        if was.workerThreads != now.workerThreads { names.append("server.worker_threads") }
        if was.logging.level != now.logging.level || was.logging.format != now.logging.format { names.append("server.logging") }
        if was.watchConfig != now.watchConfig || was.watchInterval != now.watchInterval { names.append("server.watch_config/watch_interval") }
        let listener = { (admin: AdminSettings?) in admin.flatMap { $0.enabled ? "\($0.host ?? "*"):\($0.port)" : nil } }
        if listener(old.admin) != listener(new.admin) { names.append("admin (enabled, address)") }
        if (old.metrics?.enabled ?? true) != (new.metrics?.enabled ?? true) { names.append("metrics.enabled") }
        return names
    }

    /// The configuration's plugins ready to run: the running context of each one whose
    /// configuration and module are unchanged (`previous`), else freshly loaded. The first
    /// failure is named.
    public static func loadPlugins(
        _ configuration: LoomConfiguration, previous: PluginSet = .empty,
        pluginLog: @Sendable (String) -> @Sendable (String, String) -> Void
    ) -> Result<[PluginContext], PluginFailure> {
        var plugins: [PluginContext] = []
        for plugin in configuration.plugins {
            let loaded = PluginLoader.reload(
                plugin, previous: previous.runtimes[plugin.name]?.plugin, logLevel: configuration.server.logging.level, log: pluginLog(plugin.name))
            switch loaded {
            case .success(let context): plugins.append(context)
            case .failure(let error): return .failure(PluginFailure(plugin: plugin.name, error: error))
            }
        }
        return .success(plugins)
    }

    /// A configured plugin that did not load.
    public struct PluginFailure: Error, CustomStringConvertible {
        public var plugin: String
        public var error: PluginLoadError

        public var description: String { "plugin \"\(plugin)\": \(error)" }
    }
}
