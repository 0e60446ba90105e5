/// Typed contents of the planned top-level sections whose schema is known (`tracing`,
/// `ebpf`, `plugins`). Both dialects decode them the same way; each is
/// validated now and reported as "not supported yet" by `ConfigValidator` (through
/// `PlannedFeatures.sections`). Optional fields are nil when not written: the defaults are
/// the feature's business once it is built.

/// `tracing:` (loom-faq.md, "How do I enable distributed tracing?").
public struct TracingSettings: Sendable, Equatable {
    public enum Provider: String, Sendable, CaseIterable {
        case otlp, jaeger, zipkin
    }

    public struct Sampling: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case ratio, always, never
        }

        public var type: Kind?
        /// Share of requests traced, 0...1; required when `type` is `ratio`.
        public var ratio: Double?

        public init(type: Kind? = nil, ratio: Double? = nil) {
            self.type = type
            self.ratio = ratio
        }
    }

    public var enabled: Bool?
    public var provider: Provider?
    /// `otlp.endpoint`, e.g. `otel-collector:4317`.
    public var otlpEndpoint: String?
    public var sampling: Sampling?

    public init(enabled: Bool? = nil, provider: Provider? = nil, otlpEndpoint: String? = nil, sampling: Sampling? = nil) {
        self.enabled = enabled
        self.provider = provider
        self.otlpEndpoint = otlpEndpoint
        self.sampling = sampling
    }
}

/// `ebpf:` (loom-faq.md, "Does Loom support eBPF acceleration?").
public struct EBPFSettings: Sendable, Equatable {
    public var enabled: Bool?
    public var socketRedirect: Bool?

    public init(enabled: Bool? = nil, socketRedirect: Bool? = nil) {
        self.enabled = enabled
        self.socketRedirect = socketRedirect
    }
}

/// One entry of the top-level `plugins:` list: a Proxy-Wasm module routes refer to by name.
/// The module file is not read while loading the configuration.
public struct PluginConfig: Sendable, Equatable {
    /// Unique; what `routes[].plugins` names.
    public var name: String
    /// Path of the `.wasm` module.
    public var path: String
    public var rootID: String?
    public var vmConfig: String?
    /// Plugin configuration handed to the module, kept as written.
    public var config: OpaqueValue?
    /// Bytes, greater than 0.
    public var memoryLimit: Int?
    /// Greater than 0.
    public var timeout: Duration?
    public var failOpen: Bool?

    public init(name: String, path: String, rootID: String? = nil, vmConfig: String? = nil, config: OpaqueValue? = nil,
                memoryLimit: Int? = nil, timeout: Duration? = nil, failOpen: Bool? = nil) {
        self.name = name
        self.path = path
        self.rootID = rootID
        self.vmConfig = vmConfig
        self.config = config
        self.memoryLimit = memoryLimit
        self.timeout = timeout
        self.failOpen = failOpen
    }
}

/// A configuration value kept as written, without a schema (plugin `config`). Mappings keep
/// file order.
public enum OpaqueValue: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: OpaqueValue

        public init(key: String, value: OpaqueValue) {
            self.key = key
            self.value = value
        }
    }

    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case list([OpaqueValue])
    case map([Member])
}
