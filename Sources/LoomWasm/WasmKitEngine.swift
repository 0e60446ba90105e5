// The resource limiter and import signatures are SPI in WasmKit 0.4: the limiter is the only
// way to make `memory.grow` fail at a configured size (rather than noticing after the
// fact), and the signatures let `loom plugin inspect` say what an import expects.
@_spi(Fuzzing) @_spi(OnlyForCLI) import WasmKit
import WasmParser

/// `WasmEngine` on WasmKit's interpreter, with fuel metering on so that every call has an
/// instruction budget (WasmKit has no timer interrupt; fuel is what stops a runaway guest).
///
/// Memory bounds are checked in software: WasmKit's alternative (guard pages and a signal
/// handler) wraps every call in `sigsetjmp`, whose signal-mask system calls cost more than a
/// small plugin's whole callback.
public struct WasmKitEngine: WasmEngine {
    let engine: Engine
    /// The same engine translating every function at instantiation (`checkAllFunctions`).
    let eagerEngine: Engine

    public init() {
        engine = Engine(configuration: EngineConfiguration(memoryBoundsChecking: .software, fuelMetering: true))
        eagerEngine = Engine(configuration: EngineConfiguration(compilationMode: .eager, memoryBoundsChecking: .software, fuelMetering: true))
    }

    public func compile(_ bytes: [UInt8]) throws(WasmError) -> any WasmCompiledModule {
        let module: Module
        do {
            module = try parseWasm(bytes: bytes)
        } catch {
            throw .invalidModule("\(error)")
        }
        return WasmKitModule(engine: engine, eagerEngine: eagerEngine, module: module)
    }
}

/// A parsed WasmKit module. Function bodies are validated and translated lazily, on first
/// call, by WasmKit (a bad body then traps that call), except in an instance made with
/// `checkAllFunctions`, the load-time check.
struct WasmKitModule: WasmCompiledModule, @unchecked Sendable {
    // Engine is documented as shareable (configuration immutable, interner locked).
    let engine: Engine
    let eagerEngine: Engine
    let module: Module

    var imports: [WasmImport] {
        module.imports.map { entry in
            let kind: WasmImport.Kind
            switch entry.descriptor {
            case .function(let index): kind = .function(module.functionType(at: index).map(Self.signature))
            case .memory: kind = .memory
            case .table: kind = .table
            case .global: kind = .global
            case .tag: kind = .tag
            }
            return WasmImport(module: entry.module, name: entry.name, kind: kind)
        }
    }

    var exports: [WasmExport] {
        module.exports.map { entry in
            let kind: WasmExport.Kind
            switch entry.descriptor {
            case .function: kind = .function
            case .memory: kind = .memory
            case .table: kind = .table
            case .global: kind = .global
            case .tag: kind = .tag
            }
            return WasmExport(name: entry.name, kind: kind)
        }
    }

    static func signature(_ type: FunctionType) -> WasmSignature {
        WasmSignature(type.parameters.map(valueType), type.results.map(valueType))
    }

    static func valueType(_ type: ValueType) -> WasmValueType {
        switch type {
        case .i32: .i32
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        default: .other
        }
    }

    static func kitType(_ type: WasmValueType) -> ValueType {
        switch type {
        case .i32, .other: .i32
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        }
    }

    func instantiate(host: [HostFunction], limits: WasmLimits) throws(WasmError) -> any WasmInstance {
        let store = Store(engine: limits.checkAllFunctions ? eagerEngine : engine)
        store.resourceLimiter = MemoryLimiter(limit: limits.memoryBytes)
        // A module's start function runs during instantiation: bounded like any call.
        store.fuel = Fuel(remaining: limits.startFuel)
        var imports = Imports()
        for function in host {
            let body = function.body
            let hasResult = !function.signature.results.isEmpty
            let kit = Function(
                store: store, parameters: function.signature.parameters.map(Self.kitType), results: function.signature.results.map(Self.kitType)
            ) { _, arguments, results in
                let result = try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: arguments.count) { raw in
                    for (index, value) in arguments.enumerated() { raw[index] = Self.word(value) }
                    return try body(HostArguments(UnsafeBufferPointer(raw)))
                }
                if hasResult {
                    results[0] = function.signature.results[0] == .i64 ? .i64(result) : .i32(UInt32(truncatingIfNeeded: result))
                }
            }
            imports.define(module: function.module, name: function.name, kit)
        }
        let instance: Instance
        do {
            instance = try module.instantiate(store: store, imports: imports)
        } catch {
            throw .instantiation("\(error)")
        }
        guard let memory = instance.exports[memory: "memory"] else {
            throw .instantiation("the module exports no memory named \"memory\"")
        }
        return WasmKitInstance(store: store, instance: instance, memory: WasmKitMemory(memory: memory))
    }

    static func word(_ value: Value) -> UInt64 {
        switch value {
        case .i32(let v): UInt64(v)
        case .i64(let v): v
        case .f32(let v): UInt64(v)
        case .f64(let v): v
        default: 0
        }
    }
}

/// Refuses memory growth past the plugin's `memory_limit`; tables are left alone (their
/// elements are function references, bounded by the module).
private final class MemoryLimiter: ResourceLimiter, Sendable {
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool { desired <= limit }
}

final class WasmKitInstance: WasmInstance {
    let store: Store
    let instance: Instance
    let kitMemory: WasmKitMemory
    /// Budget for the next outermost call; nested calls (the allocator, from inside a host
    /// function) share the running one.
    private var budget: UInt64?
    private var depth = 0
    /// Interpreter stacks, one per nesting depth, kept: a fresh one per call is a 512 KiB
    /// allocation, which cost more than a small plugin's whole call.
    private var stacks: [StackBox] = []

    /// A host function may call the guest (its allocator), which may call the host again:
    /// past this depth the call traps rather than exhaust the thread's stack.
    static let maxDepth = 4

    private final class StackBox {
        var stack: ExecutionStack

        init(engine: Engine) {
            stack = ExecutionStack(engine: engine)
        }
    }

    init(store: Store, instance: Instance, memory: WasmKitMemory) {
        self.store = store
        self.instance = instance
        self.kitMemory = memory
    }

    var memory: any LinearMemory { kitMemory }

    func function(_ name: String) -> WasmFunctionRef? {
        guard let function = instance.exports[function: name] else { return nil }
        return WasmFunctionRef(handle: function, signature: WasmKitModule.signature(function.type))
    }

    func setFuel(_ fuel: UInt64?) {
        budget = fuel
    }

    func consumeFuel(_ units: UInt64) {
        guard let remaining = store.fuel?.remaining else { return }
        // Leave one unit so the guest's next charge, not the host, reports the exhaustion.
        store.fuel = Fuel(remaining: remaining > units ? remaining - units : min(remaining, 1))
    }

    func call(_ reference: WasmFunctionRef, _ arguments: [UInt64]) throws(WasmError) -> UInt64? {
        guard let function = reference.handle as? Function else { throw .trap("not a WasmKit function") }
        let parameters = reference.signature.parameters
        guard parameters.count == arguments.count else {
            throw .trap("expected \(parameters.count) arguments, got \(arguments.count)")
        }
        var values: [Value] = []
        values.reserveCapacity(arguments.count)
        for (parameter, argument) in zip(parameters, arguments) {
            values.append(parameter == .i64 ? .i64(argument) : .i32(UInt32(truncatingIfNeeded: argument)))
        }
        if depth == 0 { store.fuel = budget.map { Fuel(remaining: $0) } }
        guard depth < Self.maxDepth else { throw .trap("host calls nested more than \(Self.maxDepth) deep (a host function's guest call calling the host again)") }
        if depth == stacks.count { stacks.append(StackBox(engine: store.engine)) }
        let box = stacks[depth]
        depth += 1
        defer { depth -= 1 }
        do {
            return try function.invoke(values, on: &box.stack).first.map(WasmKitModule.word)
        } catch let trap as Trap {
            // Traps say what happened in their description; out-of-fuel is the one we act on.
            if "\(trap)".contains("out of fuel") { throw .outOfFuel }
            throw .trap("\(trap)")
        } catch let error as WasmError {
            throw error
        } catch {
            throw .trap("\(error)")
        }
    }
}

/// WasmKit's memory behind the checks WasmKit's own accessors do not make (they trap the
/// process on a bad range).
struct WasmKitMemory: LinearMemory {
    let memory: WasmKit.Memory

    var byteCount: Int { memory.byteCount }

    func withBytes<T>(at offset: UInt32, count: UInt32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T? {
        guard contains(offset, count) else { return nil }
        if count == 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try memory.withUnsafeBufferPointer(offset: UInt(offset), count: Int(count), body)
    }

    func withMutableBytes(at offset: UInt32, count: UInt32, _ body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> Bool {
        guard contains(offset, count) else { return false }
        if count == 0 { return true }
        try memory.withUnsafeMutableBufferPointer(offset: UInt(offset), count: Int(count), body)
        return true
    }
}
