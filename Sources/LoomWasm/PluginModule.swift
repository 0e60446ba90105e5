/// A Proxy-Wasm module checked and compiled once, at load: its ABI version, how it starts,
/// its allocator, and that the host provides every function it imports. Instances are made
/// from it per event loop (`PluginVM`).
public struct PluginModule: Sendable {
    public let compiled: any WasmCompiledModule
    public let abi: ProxyABIVersion
    /// The export the host calls to hand the guest memory (`proxy_on_memory_allocate`, or
    /// the deprecated `malloc`).
    let allocator: String
    let start: Start
    /// Every exported function name, for the callbacks the module implements.
    let functionExports: Set<String>
    /// A hash of the module's bytes: a reload keeps the running plugin when neither its
    /// configuration nor this changed (valid within one process).
    public let digest: Int

    /// How an instance is started before its first callback (WASI's reactor and command
    /// models, as Envoy's host runs them).
    enum Start: Equatable {
        /// `_initialize`, then `main(0, 0)` when exported.
        case reactor(main: Bool)
        /// `_start` (a command module).
        case command
        case none
    }

    /// Checks and compiles `bytes`. Every problem is a `PluginLoadError` that names what is
    /// wrong (an import the host lacks names the import).
    public static func load(_ bytes: [UInt8], engine: any WasmEngine) throws(PluginLoadError) -> PluginModule {
        let compiled: any WasmCompiledModule
        do {
            compiled = try engine.compile(bytes)
        } catch {
            throw .invalid("\(error)")
        }
        let report = PluginInspection(compiled)
        if let problem = report.problems.first { throw problem }
        guard let abi = report.abi else { throw .noABIVersion(found: report.otherABIMarkers) }
        return PluginModule(
            compiled: compiled, abi: abi, allocator: report.allocator ?? "malloc", start: report.start,
            functionExports: Set(compiled.exports.filter { $0.kind == .function }.map(\.name)), digest: digest(bytes))
    }

    func exports(_ name: String) -> Bool { functionExports.contains(name) }

    static func digest(_ bytes: [UInt8]) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes)
        return hasher.finalize()
    }
}

/// What a module declares, in the terms of the Proxy-Wasm host: `loom plugin inspect`'s
/// report and the checks `PluginModule.load` makes.
public struct PluginInspection: Sendable {
    public let abi: ProxyABIVersion?
    /// `proxy_abi_version_*` exports of versions this host does not run (0.1.0).
    public let otherABIMarkers: [String]
    public let allocator: String?
    let start: PluginModule.Start
    public let imports: [WasmImport]
    public let exports: [WasmExport]
    /// Function imports the host does not provide, or provides with another signature.
    public let missingImports: [(import: WasmImport, expected: WasmSignature?)]

    public init(_ module: any WasmCompiledModule) {
        imports = module.imports
        exports = module.exports
        let functions = Set(exports.filter { $0.kind == .function }.map(\.name))
        abi = ProxyABIVersion.allCases.first { functions.contains($0.rawValue) }
        otherABIMarkers = functions.filter { $0.hasPrefix("proxy_abi_version_") && ProxyABIVersion(rawValue: $0) == nil }.sorted()
        allocator = ["proxy_on_memory_allocate", "malloc"].first { functions.contains($0) }
        if functions.contains("_initialize") {
            start = .reactor(main: functions.contains("main"))
        } else if functions.contains("_start") {
            start = .command
        } else {
            start = .none
        }
        var missing: [(WasmImport, WasmSignature?)] = []
        for entry in imports {
            guard case .function(let signature) = entry.kind else {
                // Proxy-Wasm modules define their own memory and tables; the host offers
                // nothing else to import.
                missing.append((entry, nil))
                continue
            }
            let provided = HostImports.signature(module: entry.module, name: entry.name)
            if provided == nil || (signature != nil && signature != provided) { missing.append((entry, provided)) }
        }
        missingImports = missing
        hasMemory = exports.contains { $0.kind == .memory && $0.name == "memory" }
    }

    private let hasMemory: Bool

    /// What keeps the module from loading, most basic first.
    public var problems: [PluginLoadError] {
        var problems: [PluginLoadError] = []
        if abi == nil { problems.append(.noABIVersion(found: otherABIMarkers)) }
        if !hasMemory { problems.append(.noMemory) }
        if allocator == nil { problems.append(.noAllocator) }
        for (entry, expected) in missingImports {
            problems.append(.unsupportedImport(module: entry.module, name: entry.name, kind: entry.kind, expected: expected))
        }
        return problems
    }
}

/// Why a plugin module cannot be used, said so that its author knows what to change.
public enum PluginLoadError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case invalid(String)
    case noABIVersion(found: [String])
    case noMemory
    case noAllocator
    case unsupportedImport(module: String, name: String, kind: WasmImport.Kind, expected: WasmSignature?)
    /// Starting an instance failed: instantiation, `_initialize`/`_start`, or a root callback.
    case startFailed(String)
    /// `proxy_on_vm_start` or `proxy_on_configure` answered false.
    case refused(String)

    public var description: String {
        switch self {
        case .unreadable(let reason): return "cannot read the module: \(reason)"
        case .invalid(let reason): return "not a valid WebAssembly module (\(reason))"
        case .noABIVersion(let found):
            let markers = ProxyABIVersion.allCases.map(\.rawValue).joined(separator: " nor ")
            let seen = found.isEmpty ? "" : " (it exports \(found.joined(separator: ", ")), a version this host does not run)"
            return "not a Proxy-Wasm module of a supported ABI: it exports neither \(markers)\(seen)"
        case .noMemory:
            return "the module exports no linear memory named \"memory\""
        case .noAllocator:
            return "the module exports neither proxy_on_memory_allocate nor malloc, so the host cannot hand it data"
        case .unsupportedImport(let module, let name, let kind, let expected):
            switch kind {
            case .function(let signature):
                if let expected {
                    return "imports \(module).\(name) as \(signature.map(\.description) ?? "?"), but the host provides it as \(expected)"
                }
                return "imports \(module).\(name), which this host does not provide"
            default:
                return "imports a \(kind) \(module).\(name); the host provides only functions"
            }
        case .startFailed(let reason): return "failed to start: \(reason)"
        case .refused(let reason): return reason
        }
    }
}
