import LoomConfig

/// A configured plugin ready to run: its checked module and everything its instances share
/// (configuration bytes, limits, environment, log, and the data every instance of the
/// plugin sees across event loops). Built once per configuration load.
public final class PluginContext: Sendable {
    /// What this context was built from (a reload compares it to the new configuration's).
    public let config: PluginConfig
    public let name: String
    public let rootID: String
    public let module: PluginModule
    /// `vm_config`, for `proxy_on_vm_start` (buffer `VM_CONFIGURATION`).
    let vmConfiguration: [UInt8]
    /// `config` (a map as JSON), for `proxy_on_configure` (buffer `PLUGIN_CONFIGURATION`).
    let configuration: [UInt8]
    let limits: WasmLimits
    /// The instruction budget of one call, from `timeout`.
    let fuel: UInt64
    /// `KEY=value` entries WASI's `environ_get` hands the guest (never loom's own).
    let environment: [String]
    public let failOpen: Bool
    let logLevel: ProxyLogLevel
    private let logSink: @Sendable (ProxyLogLevel, String) -> Void
    let shared: PluginSharedState

    /// Instructions a call may run per millisecond of its `timeout`. WasmKit's interpreter
    /// runs roughly 100–300 million simple instructions a second on this machine's cores in
    /// a release build, so this keeps a call's budget inside its timeout even on a slow
    /// core; host calls are charged extra (`hostCallFuel`).
    static let fuelPerMillisecond: UInt64 = 50_000
    /// What one host call costs in fuel, on top of the bytes it copies.
    static let hostCallFuel: UInt64 = 200

    /// `isolated`: shared data and queues of its own, not the running plugin's (a trial
    /// start must not change what live instances see).
    public init(
        config: PluginConfig, module: PluginModule, logLevel: LoggingSettings.Level, isolated: Bool = false,
        log: @escaping @Sendable (_ level: String, _ message: String) -> Void
    ) {
        self.config = config
        name = config.name
        rootID = config.rootID ?? ""
        self.module = module
        vmConfiguration = Array((config.vmConfig ?? "").utf8)
        configuration = Array(PluginConfigText.render(config.config).utf8)
        let milliseconds = UInt64(max(1, (config.timeout ?? PluginDefaults.timeout).inMilliseconds))
        fuel = milliseconds * Self.fuelPerMillisecond
        // A trial start (isolated) is the load-time check: it validates every function.
        limits = WasmLimits(memoryBytes: config.memoryLimit ?? PluginDefaults.memoryLimit, startFuel: fuel, checkAllFunctions: isolated)
        environment = config.environment.map { "\($0.name)=\($0.value)" }
        failOpen = config.failOpen ?? false
        self.logLevel = switch logLevel {
        case .trace: .trace
        case .debug: .debug
        case .info, .notice: .info
        case .warning: .warn
        case .error: .error
        case .critical: .critical
        }
        logSink = { level, message in log(level.name, message) }
        shared = isolated ? PluginSharedState() : PluginSharedState.forPlugin(config.name)
    }

    /// What every instance of this plugin (by name, across reloads) has done so far.
    public var usage: (busyNanoseconds: Int, calls: Int, failures: Int) {
        (shared.busyNanoseconds.load(ordering: .relaxed), shared.calls.load(ordering: .relaxed), shared.failures.load(ordering: .relaxed))
    }

    /// The metrics the plugin defined (`proxy_define_metric`), with their values.
    public var definedMetrics: [PluginMetrics.Metric] { shared.metrics.all }

    func log(_ level: ProxyLogLevel, _ message: String) {
        guard level.rawValue >= logLevel.rawValue else { return }
        logSink(level, message)
    }
}

/// What a plugin gets when its configuration leaves a setting out.
public enum PluginDefaults {
    /// Per instance (one per event loop).
    public static let memoryLimit = 64 * 1024 * 1024
    /// Per guest call.
    public static let timeout = Duration.milliseconds(100)
}

extension ProxyLogLevel {
    var name: String {
        switch self {
        case .trace: "trace"
        case .debug: "debug"
        case .info: "info"
        case .warn: "warning"
        case .error: "error"
        case .critical: "critical"
        }
    }
}

/// A plugin's `config` as the bytes `on_configure` reads: a string as written, a map as JSON
/// (what Envoy users put in `configuration` and what SDK examples parse).
enum PluginConfigText {
    static func render(_ value: OpaqueValue?) -> String {
        guard let value else { return "" }
        if case .string(let text) = value { return text }
        return json(value)
    }

    static func json(_ value: OpaqueValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .number(let number): return number.isFinite ? "\(number)" : "null"
        case .string(let text): return quoted(text)
        case .list(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        case .map(let members): return "{" + members.map { quoted($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// What the plugin's instances share, read from outside (tests, diagnostics).
extension PluginContext {
    /// Shared data `key` as text.
    public func sharedText(_ key: String) -> String? {
        shared.get(key).map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Shared data `key` as a decimal number.
    public func sharedCount(_ key: String) -> Int? {
        sharedText(key).flatMap { Int($0) }
    }

    /// A counter's or gauge's value by name.
    public func metricValue(_ name: String) -> Int64? {
        shared.metrics.all.first { $0.name == name && $0.type != .histogram }?.value
    }
}