/// One entry of the top-level `plugins:` list: a Proxy-Wasm module routes refer to by name.
/// The module file is read and checked by the plugin host (LoomWasm), through the
/// `ConfigLoader`'s plugin check, so its problems are reported with the configuration's.
public struct PluginConfig: Sendable, Equatable {
    /// Unique; what `routes[].plugins` names.
    public var name: String
    /// Path of the `.wasm` module (relative paths resolved against the configuration
    /// file's directory).
    public var path: String
    public var rootID: String?
    public var vmConfig: String?
    /// Plugin configuration handed to the module, kept as written.
    public var config: OpaqueValue?
    /// Bytes of linear memory per instance, greater than 0 (default 64 MiB).
    public var memoryLimit: Int?
    /// Per guest call, greater than 0 (default 100 ms).
    public var timeout: Duration?
    public var failOpen: Bool?
    /// What WASI's `environ_get` gives the module (`environment`: name → value), in file
    /// order; loom's own environment is never passed.
    public var environment: [Variable]

    public struct Variable: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(name: String, path: String, rootID: String? = nil, vmConfig: String? = nil, config: OpaqueValue? = nil,
                memoryLimit: Int? = nil, timeout: Duration? = nil, failOpen: Bool? = nil, environment: [Variable] = []) {
        self.environment = environment
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

/// What a plugin host finds wrong with a configured plugin (an unreadable or unusable module,
/// a refused configuration), one message per problem; empty when it can run.
public typealias PluginCheck = @Sendable (PluginConfig) -> [String]
