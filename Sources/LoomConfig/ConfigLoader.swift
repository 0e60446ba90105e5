import Foundation

/// The one entry point for configuration: file, text, or environment (simple mode) in,
/// `ConfigLoadResult` out.
///
/// The pipeline is the same for both dialects: parse into a `ConfigNode` tree, expand
/// `${VAR}` in every string, decode the tree with the dialect's decoder, then run the
/// dialect-independent `ConfigValidator`. No step stops at the first problem, and the
/// diagnostics of all steps are returned together, in source order.
public enum ConfigLoader {
    /// Reads and loads a file; dialect by extension (`.yaml`/`.yml` → YAML, `.toml` → TOML),
    /// else by content sniffing.
    public static func load(path: String, environment: [String: String], checks: ConfigChecks = .none) -> ConfigLoadResult {
        switch readFile(path) {
        case .success(let text):
            return load(text: text, fileName: path, dialect: nil, environment: environment, checks: checks)
        case .failure(let problem):
            let diagnostic = Diagnostic(.error, at: SourceLocation(file: path), path: "", "cannot read config file: \(problem.message)")
            return ConfigLoadResult(configuration: nil, diagnostics: [diagnostic])
        }
    }

    /// Loads configuration text. `fileName` appears in diagnostics and picks the dialect
    /// when `dialect` is nil (by extension, then by content).
    /// `checks` judge what the configuration names outside itself (plugin modules,
    /// certificate files); their problems are reported at the keys that name them.
    public static func load(
        text: String, fileName: String, dialect: ConfigDialect?, environment: [String: String], checks: ConfigChecks = .none
    ) -> ConfigLoadResult {
        switch ConfigDocument.parse(text: text, fileName: fileName, dialect: dialect) {
        case .success(let document): return document.load(environment: environment, checks: checks)
        case .failure(let diagnostic): return ConfigLoadResult(configuration: nil, diagnostics: [diagnostic])
        }
    }

    /// Simple mode: returns nil when neither `LOOM_TARGET_HOST/PORT/SOCKET` nor
    /// `WARPDRIVE_TARGET_*` is set.
    public static func simpleMode(environment: [String: String]) -> ConfigLoadResult? {
        SimpleModeLoader.load(environment: environment)
    }

    /// The dialect of a file: by extension, else TOML when the first meaningful line is a
    /// `[table]` header or a `key = value` pair, else YAML.
    public static func detectDialect(fileName: String, text: String) -> ConfigDialect {
        let lowered = fileName.lowercased()
        if lowered.hasSuffix(".toml") { return .warpDriveTOML }
        if lowered.hasSuffix(".yaml") || lowered.hasSuffix(".yml") { return .loomYAML }
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") { return .warpDriveTOML }
            if let equals = line.firstIndex(of: "="), !line[..<equals].contains(":") { return .warpDriveTOML }
            return .loomYAML
        }
        return .loomYAML
    }

    /// Stable sort by position; diagnostics without a line keep their order at the end.
    static func sortedBySource(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            func key(_ d: Diagnostic, _ offset: Int) -> (Int, Int, Int) {
                guard let location = d.location, location.line > 0 else { return (Int.max, 0, offset) }
                return (location.line, location.column, offset)
            }
            return key(lhs.element, lhs.offset) < key(rhs.element, rhs.offset)
        }.map(\.element)
    }

    private struct ReadProblem: Error {
        var message: String
    }

    /// Reads a UTF-8 file, turning each failure into a short reason.
    private static func readFile(_ path: String) -> Result<String, ReadProblem> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .failure(ReadProblem(message: "no such file"))
        }
        if isDirectory.boolValue { return .failure(ReadProblem(message: "is a directory")) }
        guard FileManager.default.isReadableFile(atPath: path) else {
            return .failure(ReadProblem(message: "permission denied"))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(ReadProblem(message: "read failed"))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(ReadProblem(message: "not UTF-8 text"))
        }
        return .success(text)
    }
}

extension ConfigLoader {
    /// The configuration file `loom run` should read: `--config`, else `LOOM_CONFIG`, else
    /// `WARPDRIVE_CONFIG`; nil means simple mode (or no configuration). An empty value counts
    /// as unset, as simple-mode variables do, rather than naming a file called "".
    public static func configPath(option: String?, environment: [String: String]) -> String? {
        for candidate in [option, environment["LOOM_CONFIG"], environment["WARPDRIVE_CONFIG"]] {
            if let candidate, !candidate.isEmpty { return candidate }
        }
        return nil
    }
}
