import ArgumentParser
import Dispatch
import LoomConfig
import LoomProxy
import LoomWasm
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `loom run`: load the configuration, serve until SIGTERM/SIGINT, drain, exit 0.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy (the default command).",
        discussion: """
            On SIGTERM or SIGINT loom stops accepting connections, lets in-flight requests \
            finish for up to server.shutdown_timeout (default 30s), then exits 0. A second \
            signal exits at once. SIGHUP, or a change to the configuration file (unless \
            server.watch_config is false), reloads the configuration without dropping a \
            request; an invalid one is rejected and the running one stays. With a control \
            section, `loom ctl` changes the running configuration through its socket.

            Examples:
              loom run --config gateway.yaml
              LOOM_CONFIG=warpdrive.toml loom run --log-level debug
              LOOM_TARGET_PORT=3000 loom
            """
    )

    @Option(name: .shortAndLong, help: "Configuration file (Loom YAML or WarpDrive TOML).")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(help: "Log format: json or text.")
    var logFormat: String?

    func validate() throws {
        if let logLevel, LoggingSettings.Level(rawValue: logLevel) == nil {
            throw ValidationError("unknown log level \"\(logLevel)\" (use trace, debug, info, notice, warning, error or critical)")
        }
        if let logFormat, LoggingSettings.Format(rawValue: logFormat) == nil {
            throw ValidationError("unknown log format \"\(logFormat)\" (use json or text)")
        }
    }

    func run() async throws {
        // A SIGHUP before the reload handler is in place must not end the process (the
        // default action); one that arrives while loading is answered by the file watch.
        signal(SIGHUP, SIG_IGN)
        let environment = ProcessEnvironment.current
        let path = ConfigLoader.configPath(option: config, environment: environment)
        // Taken before the file is read, so the watch sees an edit made while loom starts.
        let loadedSignature = path.flatMap(ConfigFileWatcher.signature(of:))
        let result: ConfigLoadResult
        if let path {
            result = ConfigLoader.load(path: path, environment: environment, checks: .full)
        } else if let simple = ConfigLoader.simpleMode(environment: environment) {
            result = simple
        } else {
            throw ValidationError("""
                no configuration: pass --config FILE, set LOOM_CONFIG (or WARPDRIVE_CONFIG), \
                or use simple mode with LOOM_TARGET_HOST and LOOM_TARGET_PORT
                """)
        }
        for diagnostic in result.diagnostics { printError(diagnostic.description) }
        guard !result.hasFatal, let configuration = result.configuration else {
            printError("loom: refusing to start with the problems above (check them with `loom validate`)")
            throw ExitCode.failure
        }

        let logging = configuration.server.logging
        let format = LoomLogHandler.Format(rawValue: logFormat ?? logging.format.rawValue) ?? .json
        let level = Logger.Level(rawValue: logLevel ?? logging.level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in LoomLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "loom")
        let accessLog = AccessLog(logger: Logger(label: "loom.access"), enabled: logging.accessLog)

        let pluginLog: @Sendable (String) -> @Sendable (String, String) -> Void = { name in
            let pluginLogger = Logger(label: "loom.plugin")
            return { level, message in
                pluginLogger.log(level: Logger.Level(rawValue: level) ?? .info, "\(message)", metadata: ["plugin": .string(name)])
            }
        }
        let plugins: [PluginContext]
        switch ConfigReloader.loadPlugins(configuration, pluginLog: pluginLog) {
        case .success(let loaded): plugins = loaded
        case .failure(let problem):
            logger.critical("plugin failed to load", metadata: ["error": .string(problem.description)])
            throw ExitCode.failure
        }

        let signals = SignalWatcher(signals: [SIGTERM, SIGINT])
        // Request metrics only when something can read them (the admin API's /metrics).
        let adminRuns = configuration.admin?.enabled == true
        let metrics = adminRuns && configuration.metrics?.enabled != false ? LoomMetrics() : nil
        let engine = try ProxyEngine(configuration: configuration, logger: logger, accessLog: accessLog, plugins: plugins, metrics: metrics)
        do {
            _ = try await engine.start()
        } catch {
            logger.critical("could not start listeners", metadata: ["error": .string("\(error)")])
            await engine.shutdown(gracePeriod: .zero)
            throw ExitCode.failure
        }
        let reloader = ConfigReloader(
            source: path.map { .file($0) } ?? .environment, document: result.document, environment: environment, engine: engine, logger: logger,
            metrics: metrics, pluginLog: pluginLog)
        var admin: AdminServer?
        if let settings = configuration.admin, settings.enabled {
            let api = AdminAPI(engine: engine, reloader: path == nil ? nil : reloader, metrics: metrics, version: LoomVersion.current)
            do {
                admin = try await AdminServer.start(settings, api: api, logger: logger)
            } catch {
                logger.critical("could not start the admin API", metadata: ["error": .string("\(error)")])
                await engine.shutdown(gracePeriod: .zero)
                throw ExitCode.failure
            }
        }
        var control: ControlServer?
        if let settings = configuration.control {
            do {
                control = try await ControlServer.start(path: settings.socket, engine: engine, reloader: reloader, version: LoomVersion.current, logger: logger)
            } catch {
                logger.critical("could not start the control socket", metadata: ["error": .string("\(error)")])
                await admin?.stop()
                await engine.shutdown(gracePeriod: .zero)
                throw ExitCode.failure
            }
        }
        let hangup = SignalHandler(SIGHUP) { Task { _ = await reloader.reload(trigger: "SIGHUP") } }
        var watcher: ConfigFileWatcher?
        if let path, configuration.server.watchConfig {
            watcher = ConfigFileWatcher(path: path, interval: configuration.server.watchInterval, since: loadedSignature) {
                _ = await reloader.perform(.fileIfChanged, trigger: "file change")
            }
        }
        let signal = await signals.first()
        watcher?.stop()
        hangup.cancel()
        await reloader.close()
        await control?.stop()
        let grace = engine.store.current.configuration.server.shutdownTimeout
        logger.notice("shutting down", metadata: ["signal": .stringConvertible(signal), "grace": .string("\(grace)")])
        // The admin API answers through the drain (`/ready` is false meanwhile).
        await engine.shutdown(gracePeriod: grace)
        await admin?.stop()
        logger.notice("stopped")
    }

    private func printError(_ text: String) {
        var line = Array((text + "\n").utf8)
        _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

/// Runs `action` on every delivery of one signal (SIGHUP: reload).
final class SignalHandler: @unchecked Sendable {  // a dispatch source is thread-safe
    private let source: any DispatchSourceSignal

    init(_ number: Int32, action: @escaping @Sendable () -> Void) {
        signal(number, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue(label: "loom.signal.\(number)"))
        source.setEventHandler(handler: action)
        source.resume()
    }

    func cancel() {
        source.cancel()
    }
}

/// Turns SIGTERM/SIGINT into an awaitable event. The first signal starts a graceful
/// shutdown; a second one ends the process at once with status 128+signal, as shells expect.
final class SignalWatcher: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "loom.signals")
    private var received = 0
    private var continuation: CheckedContinuation<Int32, Never>?
    private var pending: Int32?

    init(signals: [Int32]) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [weak self] in self?.receive(number) }
            source.resume()
            sources.append(source)
        }
    }

    private func receive(_ number: Int32) {
        received += 1
        if received > 1 { _exit(128 + number) }
        if let continuation {
            self.continuation = nil
            continuation.resume(returning: number)
        } else {
            pending = number
        }
    }

    /// Waits for the first signal.
    func first() async -> Int32 {
        await withCheckedContinuation { continuation in
            queue.async {
                if let pending = self.pending {
                    continuation.resume(returning: pending)
                } else {
                    self.continuation = continuation
                }
            }
        }
    }
}
