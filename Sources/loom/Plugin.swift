import ArgumentParser
import LoomWasm

/// `loom plugin inspect FILE`: what a Proxy-Wasm module declares and whether this host can
/// run it, before it goes into a configuration.
struct Plugin: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with Proxy-Wasm plugin modules.",
        subcommands: [Inspect.self]
    )

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a module's ABI version, exports and imports, and any import this host lacks.",
            discussion: "Exits 0 when loom can load the module, 1 otherwise.\n\nExample:\n  loom plugin inspect filter.wasm"
        )

        @Argument(help: "The .wasm module.")
        var file: String

        func run() throws {
            let module: PluginModule
            switch PluginLoader.module(at: file) {
            case .success(let loaded):
                module = loaded
            case .failure(let error):
                // Print what can be read before saying why it cannot load.
                if case .unreadable = error {} else if case .invalid = error {} else if let report = PluginLoader.inspection(at: file) {
                    print(Self.render(report))
                }
                print("\(file): cannot be loaded: \(error)")
                throw ExitCode.failure
            }
            print(Self.render(PluginInspection(module.compiled)))
            print("\(file): OK (Proxy-Wasm ABI \(module.abi.version))")
        }

        static func render(_ report: PluginInspection) -> String {
            var lines: [String] = []
            lines.append("ABI version: " + (report.abi.map { "\($0.version) (\($0.rawValue))" } ?? "none of \(ProxyABIVersion.allCases.map(\.version).joined(separator: ", "))"))
            lines.append("allocator: " + (report.allocator ?? "none"))
            lines.append("exports (\(report.exports.count)):")
            for export in report.exports { lines.append("  \(export.name) (\(export.kind))") }
            lines.append("imports (\(report.imports.count)):")
            for entry in report.imports {
                var line = "  \(entry.module).\(entry.name)"
                if case .function(let signature?) = entry.kind { line += " \(signature)" }
                if report.missingImports.contains(where: { $0.import == entry }) { line += "  MISSING in this host" }
                lines.append(line)
            }
            return lines.joined(separator: "\n")
        }
    }
}
