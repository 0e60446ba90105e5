import Foundation
import LoomConfig
import Synchronization

/// Reads, checks and starts configured plugins: the one place module files are read.
///
/// `check` is what `loom validate` and every configuration load run for each plugin (through
/// `ConfigLoader`'s plugin check): the module must load, and a trial instance must start and
/// accept its configuration, as Envoy starts a VM before it takes a plugin.
public enum PluginLoader {
    /// One engine for the process (it holds only configuration and a type interner).
    public static let engine: any WasmEngine = WasmKitEngine()

    /// The module at `path`, checked and compiled.
    public static func module(at path: String) -> Result<PluginModule, PluginLoadError> {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            return .failure(.unreadable(exists ? "\(path) cannot be read" : "\(path) does not exist"))
        }
        return Result { () throws(PluginLoadError) in try PluginModule.load([UInt8](data), engine: engine) }
    }

    /// What the module at `path` declares, when it is a WebAssembly module at all.
    public static func inspection(at path: String) -> PluginInspection? {
        guard let data = FileManager.default.contents(atPath: path), let compiled = try? engine.compile([UInt8](data)) else { return nil }
        return PluginInspection(compiled)
    }

    /// `config`'s plugin ready to run, its log going to `log`.
    public static func load(
        _ config: PluginConfig, logLevel: LoggingSettings.Level, isolated: Bool = false,
        log: @escaping @Sendable (_ level: String, _ message: String) -> Void
    ) -> Result<PluginContext, PluginLoadError> {
        module(at: config.path).map { PluginContext(config: config, module: $0, logLevel: logLevel, isolated: isolated, log: log) }
    }

    /// `config`'s plugin for a reload: `previous` itself when its configuration and module
    /// file are unchanged (its instances, timers and state carry on), else a fresh load.
    public static func reload(
        _ config: PluginConfig, previous: PluginContext?, logLevel: LoggingSettings.Level,
        log: @escaping @Sendable (_ level: String, _ message: String) -> Void
    ) -> Result<PluginContext, PluginLoadError> {
        if let previous, previous.config == config, let data = FileManager.default.contents(atPath: config.path),
            PluginModule.digest([UInt8](data)) == previous.module.digest
        {
            return .success(previous)
        }
        return load(config, logLevel: logLevel, log: log)
    }

    /// The problems of one configured plugin: its module, then a trial start (with what the
    /// plugin logged at warning or above, which usually says why it refused).
    public static let check: PluginCheck = { config in
        let logged = Mutex<[String]>([])
        let context: PluginContext
        switch load(config, logLevel: .warning, isolated: true, log: { _, message in logged.withLock { $0.append(message) } }) {
        case .failure(let error): return [error.description]
        case .success(let loaded): context = loaded
        }
        do {
            _ = try PluginVM(plugin: context)
            return []
        } catch {
            let said = logged.withLock { $0 }.suffix(3)
            return ["\(error)" + (said.isEmpty ? "" : " (it logged: \(said.joined(separator: "; ")))")]
        }
    }
}

/// The plugins of one configuration snapshot, by name, each with its per-loop instances.
public struct PluginSet: Sendable {
    public let runtimes: [String: PluginRuntime]

    public static let empty = PluginSet(runtimes: [:])

    public init(runtimes: [String: PluginRuntime]) {
        self.runtimes = runtimes
    }

    /// Runtimes for `plugins` over `loops` event loops, their HTTP calls made by `caller`.
    /// A plugin whose context is `previous`'s (a reload found it unchanged) keeps its runtime.
    public init(_ plugins: [PluginContext], loops: Int, caller: (any PluginHTTPCaller)? = nil, previous: PluginSet = .empty) {
        var runtimes: [String: PluginRuntime] = [:]
        for plugin in plugins {
            if let kept = previous.runtimes[plugin.name], kept.plugin === plugin {
                runtimes[plugin.name] = kept
            } else {
                runtimes[plugin.name] = PluginRuntime(plugin: plugin, loops: loops, caller: caller)
            }
        }
        self.runtimes = runtimes
    }

    /// The runtimes of `self` that `next` does not keep (a reload retires them).
    public func dropped(by next: PluginSet) -> [PluginRuntime] {
        runtimes.values.filter { runtime in next.runtimes[runtime.plugin.name] !== runtime }
    }

    /// The filters a route's `plugins` list names, in order (names without a plugin, which
    /// validation refuses, are left out).
    public func filters(_ names: [String]) -> [PluginFilter] {
        names.compactMap { runtimes[$0].map(PluginFilter.init) }
    }
}
