@testable import LoomConfig

/// Shorthands shared by the config tests.
enum TestSupport {
    static func yaml(_ text: String, env: [String: String] = [:]) -> ConfigLoadResult {
        ConfigLoader.load(text: text, fileName: "t.yaml", dialect: .loomYAML, environment: env)
    }

    /// `path` as the loader resolves it for a configuration file named "t.yaml".
    static func resolved(_ path: String) -> String {
        ConfigReader(dialect: .loomYAML, file: "t.yaml").resolvedPath(path)
    }

    static func toml(_ text: String, env: [String: String] = [:]) -> ConfigLoadResult {
        ConfigLoader.load(text: text, fileName: "t.toml", dialect: .warpDriveTOML, environment: env)
    }
}

extension ConfigLoadResult {
    /// Rendered diagnostics, the form users see.
    var messages: [String] { diagnostics.map(\.description) }
    /// Rendered diagnostics other than the "no routes" warning, for snippets without routes.
    var problems: [String] { diagnostics.filter { $0.path != "routes" || $0.severity != .warning }.map(\.description) }
}
