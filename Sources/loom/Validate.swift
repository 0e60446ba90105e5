import ArgumentParser
import LoomConfig
import LoomWasm

#if canImport(Glibc)
import Glibc
#endif

/// `loom validate FILE`: print every problem in a configuration, exit non-zero if any.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration file and print every problem at once.",
        discussion: """
            Each problem is printed as FILE:LINE:COLUMN KEY.PATH: MESSAGE. Features that are \
            configured but not built yet are reported as "not supported yet". The exit status \
            is 0 when the file would start, 1 otherwise.

            Example:
              loom validate gateway.yaml
            """
    )

    @Argument(help: "The Loom YAML or WarpDrive TOML file to check.")
    var file: String

    func run() throws {
        let result = ConfigLoader.load(path: file, environment: ProcessEnvironment.current, checks: .full)
        for diagnostic in result.diagnostics { print(diagnostic) }
        print(Self.summary(file: file, result: result))
        if result.hasFatal { throw ExitCode.failure }
    }

    /// `gateway.yaml: OK (1 listener, 2 upstreams, 3 routes)` or `gateway.yaml: 2 errors, 1 not supported yet`.
    static func summary(file: String, result: ConfigLoadResult) -> String {
        let errors = result.diagnostics.filter { $0.severity == .error }.count
        let unsupported = result.diagnostics.filter { $0.severity == .unsupported }.count
        let warnings = result.diagnostics.filter { $0.severity == .warning }.count
        guard errors + unsupported > 0 else {
            let config = result.configuration
            var text = "\(file): OK (\(count(config?.listeners.count ?? 0, "listener")), "
                + "\(count(config?.upstreams.count ?? 0, "upstream")), \(count(config?.routes.count ?? 0, "route")))"
            if warnings > 0 { text += ", \(count(warnings, "warning"))" }
            return text
        }
        var parts: [String] = []
        if errors > 0 { parts.append(count(errors, "error")) }
        if unsupported > 0 { parts.append("\(unsupported) not supported yet") }
        if warnings > 0 { parts.append(count(warnings, "warning")) }
        return "\(file): " + parts.joined(separator: ", ")
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}

/// The process environment as a dictionary (the only place the CLI reads it).
enum ProcessEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
