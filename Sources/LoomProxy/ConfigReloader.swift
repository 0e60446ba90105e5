import LoomConfig
import LoomWasm
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// The one reload path every source goes through (the file watch, SIGHUP, the admin API,
/// the control socket): read and validate the configuration again, load its plugins
/// (keeping unchanged ones), and hand it to the engine, which applies the differences
/// (`ProxyEngine.reload`).
///
/// The control socket's changes are edits of the running document (`ConfigDocument`): the
/// edited document is loaded exactly like a file. They last until the file is loaded again
/// (a reload from any source reads the file, and the file wins) unless `save` writes them
/// back to it.
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
    /// The running configuration's document (nil in simple mode).
    private var document: ConfigDocument?
    /// The runtime changes made since the file was loaded or saved, oldest first.
    public private(set) var unsaved: [String] = []
    /// What the configuration file holds as far as loom knows: the text it last loaded from
    /// it or wrote to it. A file-watch reload of this text is skipped (it is loom's own
    /// `save`), and `save` refuses to overwrite any other text (edits loom has not loaded).
    private var fileText: String?

    /// `pluginLog`: the log sink of the plugin with the given name.
    /// `document`: the one the running configuration was loaded from.
    public init(
        source: Source, document: ConfigDocument? = nil, environment: [String: String], engine: ProxyEngine, logger: Logger,
        metrics: LoomMetrics? = nil, pluginLog: @escaping @Sendable (String) -> @Sendable (String, String) -> Void
    ) {
        self.document = document
        fileText = document?.text
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
        await perform(.file, trigger: trigger).outcome
    }

    /// Does `work` after the work already asked for; returns its outcome with the unsaved
    /// runtime changes right after it.
    public nonisolated func perform(_ work: Work, trigger: String) async -> (outcome: Outcome, unsaved: [String]) {
        // Work is only handed to the reload thread while it runs: a job enqueued on a loop
        // that has shut down is dropped, and its caller would wait forever.
        guard gate.withLockedValue({ gate in gate.admit() }) else { return (.rejected(["loom is shutting down"]), []) }
        let result = await withTaskExecutorPreference(executor) { await self.serialized(work, trigger: trigger) }
        if gate.withLockedValue({ gate in gate.finish() }) { shutDownThread() }
        return result
    }

    /// The reload thread, and the executor that runs this actor and the engine's reload
    /// work there.
    private nonisolated let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private nonisolated let executor: EventLoopTaskExecutor
    /// Calls on their way through the reload thread, and whether it is to stop: it stops
    /// when it is closed and the last of them is done.
    private nonisolated let gate = NIOLockedValueBox(Gate())

    struct Gate {
        var closed = false
        var inFlight = 0

        /// Whether a call may go to the thread (counted until `finish`).
        mutating func admit() -> Bool {
            guard !closed else { return false }
            inFlight += 1
            return true
        }

        /// Whether the thread is to stop now that this call is done.
        mutating func finish() -> Bool {
            inFlight -= 1
            return closed && inFlight == 0
        }

        /// Closes; whether the thread can stop at once (nothing on its way through).
        mutating func close() -> Bool {
            closed = true
            return inFlight == 0
        }
    }

    private nonisolated func shutDownThread() {
        let thread = self.thread
        Task.detached { try? await thread.shutdownGracefully() }
    }

    /// What a queued reload does.
    public enum Work: Sendable {
        /// Read the file again (the file wins over unsaved runtime changes).
        case file
        /// Read the file again if its text is not what loom last read or wrote (the file
        /// watch: loom's own `save` is no reason to drop the changes made since).
        case fileIfChanged
        /// Make these edits to the running document, in order, and apply the result like a
        /// reload; nothing changes unless every edit fits and the result is valid.
        case edits([ConfigDocument.Edit])
    }

    private func serialized(_ work: Work, trigger: String) async -> (outcome: Outcome, unsaved: [String]) {
        await enter()
        defer { leave() }
        // Queued before `close`, run after it: refused too.
        guard !gate.withLockedValue(\.closed) else { return (.rejected(["loom is shutting down"]), unsaved) }
        let outcome: Outcome
        switch work {
        case .file: outcome = await reloadFile(trigger: trigger)
        case .fileIfChanged:
            if case .file(let path) = source, let known = fileText, (try? String(contentsOfFile: path, encoding: .utf8)) == known {
                return (.unchanged(generation: generation), unsaved)
            }
            outcome = await reloadFile(trigger: trigger)
        case .edits(let edits): outcome = await applyEdits(edits, trigger: trigger)
        }
        metrics?.reloaded(outcome)
        return (outcome, unsaved)
    }

    /// Refuses reloads from now on, after waiting for the one running (shutdown calls this
    /// before it closes the listeners, so no reload binds them again).
    public func close() async {
        let idle = gate.withLockedValue { gate in gate.close() }
        await enter()
        leave()
        if idle { shutDownThread() }
    }

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

    private func reloadFile(trigger: String) async -> Outcome {
        guard case .file(let path) = source else {
            logger.notice("reload: simple mode has no configuration file to read again", metadata: ["trigger": .string(trigger)])
            return .unchanged(generation: generation)
        }
        let result = ConfigLoader.load(path: path, environment: environment, checks: .full)
        let outcome = await install(result, trigger: trigger)
        if case .rejected = outcome { return outcome }
        fileText = result.document?.text
        if !unsaved.isEmpty {
            logger.warning("reload: the file replaced the runtime changes that were not saved", metadata: [
                "trigger": .string(trigger), "discarded": .array(unsaved.map { .string($0) }),
            ])
            unsaved = []
        }
        return outcome
    }

    private func applyEdits(_ edits: [ConfigDocument.Edit], trigger: String) async -> Outcome {
        guard var edited = document else { return .rejected(["simple mode has no configuration file to change: run loom with a Loom YAML file"]) }
        do {
            for edit in edits { edited = try edited.applying(edit, environment: environment) }
        } catch {
            return .rejected([error.description])
        }
        let before = try? document?.yaml()
        let outcome = await install(edited.load(environment: environment, checks: .full), trigger: trigger)
        // Unsaved when the document differs from the file's, even if the running
        // configuration did not change (a weight written `${W}` set to W's value).
        switch outcome {
        case .rejected: break
        case .applied, .unchanged: if (try? edited.yaml()) != before { unsaved += edits.map(\.description) }
        }
        return outcome
    }

    /// Writes the running document (with the runtime changes) to `path`, by default the
    /// configuration file, which is kept as `FILE.bak`; returns the paths written. The
    /// changes are then saved: a reload of that file keeps them.
    public nonisolated func save(to path: String? = nil) async throws(SaveError) -> (path: String, backup: String?) {
        try await withTaskExecutorPreference(executor) { () async throws(SaveError) in try await self.serializedSave(to: path) }
    }

    private func serializedSave(to target: String?) async throws(SaveError) -> (path: String, backup: String?) {
        await enter()
        defer { leave() }
        guard case .file(let file) = source, let document else { throw SaveError(message: "simple mode has no configuration file to save to") }
        guard document.dialect == .loomYAML else {
            throw SaveError(message: "save writes Loom YAML; \(file) is WarpDrive TOML (runtime changes cannot be made to it either)")
        }
        // The file however named (another spelling, a link) is the file: saved as such.
        let overwritesFile = target.map { ConfigFileWriter.sameFile($0, file) } ?? true
        let path = overwritesFile ? file : target ?? file
        if overwritesFile, let fileText, (try? String(contentsOfFile: file, encoding: .utf8)) != fileText {
            throw SaveError(message: """
                \(file) has changed since loom last read it (edited, or a reload of it was refused): \
                reload it first (its contents then replace the unsaved runtime changes), or save to another path
                """)
        }
        let text: String
        do { text = try document.yaml() } catch { throw SaveError(message: "cannot write the configuration as YAML: \(error)") }
        let backup = try ConfigFileWriter.write(text, to: path, backingUp: overwritesFile)
        if overwritesFile {
            unsaved = []
            fileText = text
        }
        logger.notice("configuration saved", metadata: ["path": .string(path)])
        return (path, backup)
    }

    /// Why `save` wrote nothing.
    public struct SaveError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Validates `result`, loads its plugins and hands it to the engine; the running
    /// document becomes `result`'s if it is applied.
    private func install(_ result: ConfigLoadResult, trigger: String) async -> Outcome {
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
            if let loaded = result.document { document = loaded }
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
        if old.control != new.control { names.append("control.socket") }
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
