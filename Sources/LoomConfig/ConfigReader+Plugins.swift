/// Top-level `plugins`, spelled the same way in both dialects (YAML list, TOML
/// `[[plugins]]`): Proxy-Wasm modules that routes run by name.
extension ConfigReader {
    static let pluginKeys = ["name", "path", "root_id", "vm_config", "config", "memory_limit", "timeout", "fail_open", "environment"]

    /// Top-level `plugins`: a list of modules. Entries without a usable `name` are dropped
    /// (after reporting); the others are recorded in the source map for the validator
    /// (duplicate names, route references, and the module checks).
    mutating func plugins(_ node: ConfigNode, at path: String) -> [PluginConfig] {
        guard let elements = list(node, at: path) else { return [] }
        var plugins: [PluginConfig] = []
        for (elementPath, element) in elements {
            guard let table = table(element, at: elementPath, allowed: Self.pluginKeys) else { continue }
            let name = table.has("name") ? nonEmptyString(table, "name") : requiredString(table, "name")
            let modulePath = table.has("path") ? nonEmptyString(table, "path") : requiredString(table, "path")
            var plugin = PluginConfig(name: name ?? "", path: modulePath.map(resolvedPath) ?? "")
            plugin.rootID = string(table, "root_id")
            plugin.vmConfig = string(table, "vm_config")
            if let config = table["config"] { plugin.config = pluginConfig(config, at: table.path("config")) }
            plugin.memoryLimit = positiveSize(table, "memory_limit")
            plugin.timeout = positiveDuration(table, "timeout")
            plugin.failOpen = bool(table, "fail_open")
            if let node = table["environment"] { plugin.environment = environment(node, at: table.path("environment")) }
            guard name != nil else { continue }
            plugins.append(plugin)
            sourceMap.append(.plugin, fields: [.entity: elementPath, .name: table.path("name"), .path: table.path("path")])
        }
        return plugins
    }

    /// A plugin's `environment`: names (as WASI passes them, no `=`) to string values.
    private mutating func environment(_ node: ConfigNode, at path: String) -> [PluginConfig.Variable] {
        guard case .map(let entries) = node.value else {
            report(path, at: node.location, "expected \(mapName) of names to values, got \(describe(node))")
            return []
        }
        var variables: [PluginConfig.Variable] = []
        for entry in entries {
            let entryPath = Self.join(path, entry.key)
            guard !entry.key.isEmpty, !entry.key.contains("="), !entry.key.contains("\0") else {
                report(entryPath, at: entry.keyLocation ?? entry.value.location, "an environment variable name must be non-empty, without \"=\"")
                continue
            }
            guard let value = string(entry.value, entryPath) else { continue }
            variables.append(PluginConfig.Variable(name: entry.key, value: value))
        }
        return variables
    }

    /// A plugin's `config`: a string, or a mapping kept as written.
    private mutating func pluginConfig(_ node: ConfigNode, at path: String) -> OpaqueValue? {
        switch node.value {
        case .map:
            return opaque(node, at: path)
        case .scalar(let scalar) where scalar.kind == .invalid:
            return nil
        case .scalar(let scalar) where scalar.kind == .string || (scalar.isUntypedText && scalar.kind != .null):
            return .string(scalar.text)
        default:
            report(path, at: node.location, "expected a string or \(mapName), got \(describe(node))")
            return nil
        }
    }

}
