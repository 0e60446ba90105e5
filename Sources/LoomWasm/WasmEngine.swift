/// The little the Proxy-Wasm host needs from a WebAssembly engine, so that the ABI code
/// (`PluginVM` and its host functions) never names the engine: WasmKit's interpreter today
/// (`WasmKitEngine`), a compiling engine later without touching the ABI.
///
/// Proxy-Wasm passes only `i32` and `i64` across the boundary, so values are raw 64-bit
/// words whose type the signature gives.
public protocol WasmEngine: Sendable {
    /// Parses and validates a module once; instances are made from the result.
    func compile(_ bytes: [UInt8]) throws(WasmError) -> any WasmCompiledModule
}

/// A validated module: what it imports and exports, and a way to instantiate it.
public protocol WasmCompiledModule: Sendable {
    var imports: [WasmImport] { get }
    var exports: [WasmExport] { get }
    /// An instance with `host` as its imports (every function import must be among them),
    /// its memory bounded by `limits`. The instance is confined to the calling thread's use:
    /// one caller at a time, as a WebAssembly store is.
    func instantiate(host: [HostFunction], limits: WasmLimits) throws(WasmError) -> any WasmInstance
}

/// A running instance. Not thread-safe: its owner calls it from one thread at a time.
public protocol WasmInstance: AnyObject {
    /// The exported function `name`, if the module exports a function by that name.
    func function(_ name: String) -> WasmFunctionRef?
    /// Calls `function` with `arguments` (typed by its signature); its first result, if any.
    /// Throws `WasmError.trap` for a trap, `.outOfFuel` past the budget.
    func call(_ function: WasmFunctionRef, _ arguments: [UInt64]) throws(WasmError) -> UInt64?
    /// The instruction budget of the next outermost call (nil: unlimited).
    func setFuel(_ fuel: UInt64?)
    /// Takes `units` from the running call's budget (host work costs fuel too).
    func consumeFuel(_ units: UInt64)
    /// The exported linear memory, checked access only.
    var memory: any LinearMemory { get }
}

/// An exported function, resolved once (with its signature, so a call need not look it up).
public struct WasmFunctionRef {
    /// Engine-specific handle.
    let handle: Any
    public let signature: WasmSignature

    public var parameterCount: Int { signature.parameters.count }
}

public enum WasmValueType: Sendable, Equatable, CustomStringConvertible {
    case i32, i64, f32, f64, other

    public var description: String {
        switch self {
        case .i32: "i32"
        case .i64: "i64"
        case .f32: "f32"
        case .f64: "f64"
        case .other: "?"
        }
    }
}

public struct WasmSignature: Sendable, Equatable, CustomStringConvertible {
    public var parameters: [WasmValueType]
    public var results: [WasmValueType]

    public init(_ parameters: [WasmValueType], _ results: [WasmValueType] = []) {
        self.parameters = parameters
        self.results = results
    }

    public var description: String {
        "(\(parameters.map(\.description).joined(separator: ", "))) -> (\(results.map(\.description).joined(separator: ", ")))"
    }
}

public struct WasmImport: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case function(WasmSignature?)
        case memory, table, global, tag
    }

    public var module: String
    public var name: String
    public var kind: Kind
}

public struct WasmExport: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case function, memory, table, global, tag
    }

    public var name: String
    public var kind: Kind
}

/// Bounds on one instance.
public struct WasmLimits: Sendable, Equatable {
    /// The most linear memory the instance may have, in bytes: `memory.grow` past it fails
    /// (returns -1, as the instruction does when the engine is out of memory), and a module
    /// whose initial memory is larger is refused.
    public var memoryBytes: Int
    /// The instruction budget of the module's start function, run while instantiating.
    public var startFuel: UInt64
    /// Validate and translate every function body while instantiating (engines that do it
    /// lazily otherwise find a bad body only when it is first called): a load-time check.
    public var checkAllFunctions: Bool

    public init(memoryBytes: Int, startFuel: UInt64, checkAllFunctions: Bool = false) {
        self.memoryBytes = memoryBytes
        self.startFuel = startFuel
        self.checkAllFunctions = checkAllFunctions
    }
}

/// A host function an instance imports. `body` gets the arguments and returns the result
/// (ignored when the signature has none); it may call back into the guest (its allocator).
public struct HostFunction {
    public var module: String
    public var name: String
    public var signature: WasmSignature
    public var body: (HostArguments) throws -> UInt64

    public init(module: String, name: String, signature: WasmSignature, body: @escaping (HostArguments) throws -> UInt64) {
        self.module = module
        self.name = name
        self.signature = signature
        self.body = body
    }
}

/// The arguments of one host call, valid only during the call (the engine lends them from
/// a temporary buffer, so a host call allocates nothing to receive them).
public struct HostArguments {
    private let values: UnsafeBufferPointer<UInt64>

    public init(_ values: UnsafeBufferPointer<UInt64>) {
        self.values = values
    }

    public var count: Int { values.count }
    /// Argument `index` as an unsigned 32-bit value (pointers, sizes, enums).
    public func u32(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: values[index]) }
    public func i32(_ index: Int) -> Int32 { Int32(bitPattern: u32(index)) }
    public func u64(_ index: Int) -> UInt64 { values[index] }
}

/// Why an engine operation failed.
public enum WasmError: Error, Equatable, CustomStringConvertible {
    /// Not a valid module (the engine's reason).
    case invalidModule(String)
    /// Instantiation failed (a missing or mistyped import, memory over the limit, a start
    /// function that trapped).
    case instantiation(String)
    /// The guest trapped (unreachable, out-of-bounds access, stack overflow, a host
    /// function's error).
    case trap(String)
    /// The call used up its instruction budget.
    case outOfFuel

    public var description: String {
        switch self {
        case .invalidModule(let reason): "invalid module: \(reason)"
        case .instantiation(let reason): "instantiation failed: \(reason)"
        case .trap(let reason): "trap: \(reason)"
        case .outOfFuel: "ran past its time budget"
        }
    }
}
