/// Loom YAML `routes:` entries, and the Loom path syntax (`/x`, `/x/*`, `/x/{id}`).
extension LoomYAMLDecoder {
    static let routeKeys = ["id", "path", "path_regex", "host", "methods", "headers", "query", "priority", "upstream", "respond", "redirect", "static",
                            "strip_prefix", "rewrite", "add_headers", "set_headers", "remove_headers", "add_response_headers", "retry_non_idempotent", "filters",
                            "set_response_headers", "remove_response_headers", "timeouts", "description", "plugins"]

    mutating func routes(_ node: ConfigNode) {
        guard let elements = reader.list(node, at: "routes") else { return }
        reader.sourceMap.routeEntriesInSource += elements.count
        for (index, (path, element)) in elements.enumerated() {
            guard let table = reader.table(element, at: path, allowed: Self.routeKeys) else { continue }
            let name = reader.requiredString(table, "id") ?? "routes[\(index)]"
            var fields: [ConfigSourceMap.Field: String] = [.entity: path, .name: table.path("id")]
            var match = RouteMatch()
            if let pathNode = table["path"], let text = reader.string(pathNode, table.path("path")) {
                match.path = pathMatch(text, at: table.path("path"), location: pathNode.location)
                fields[.path] = table.path("path")
            }
            if let regexNode = table["path_regex"], let text = reader.string(regexNode, table.path("path_regex")) {
                fields[.path] = table.path("path_regex")
                if table.has("path") {
                    reader.report(table.path("path_regex"), at: regexNode.location, "only one of \"path\" and \"path_regex\" may be set")
                } else {
                    match.path = reader.regexPath(text, table.path("path_regex"), at: regexNode.location)
                }
            }
            match.host = reader.routeHost(table, "host")
            if let methods = table["methods"] { match.methods = reader.methods(methods, at: table.path("methods")) }
            reader.routeConditions(table, into: &match)
            let plugins = table["plugins"].map { pluginNames($0, at: table.path("plugins"), fields: &fields) } ?? []
            // Every field is decoded and checked even when the action is unusable, so one
            // run reports all of the route's problems; only then is the route dropped.
            let action = reader.routeAction(table, fields: &fields)
            var route = RouteConfig(name: name, match: match, action: action ?? .respond(StaticResponse()), plugins: plugins)
            if let v = reader.int(table, "priority") { route.priority = v }
            if let v = reader.bool(table, "strip_prefix") {
                route.stripPrefix = v
                fields[.stripPrefix] = table.path("strip_prefix")
            }
            reader.forwardingChanges(table, into: &route, fields: &fields)
            reader.routeFilters(table, into: &route, fields: &fields)
            if let timeouts = table["timeouts"] {
                fields[.timeouts] = table.path("timeouts")
                route.timeouts = reader.timeoutOverrides(timeouts, at: table.path("timeouts"))
            }
            route.description = reader.string(table, "description")
            guard action != nil else { continue }
            config.routes.append(route)
            reader.sourceMap.append(.route, fields: fields)
        }
    }

    /// A route's `plugins: [name, ...]`: names of top-level plugins (checked by the
    /// validator), each at most once. Records the list and each name in `fields`.
    private mutating func pluginNames(_ node: ConfigNode, at path: String, fields: inout [ConfigSourceMap.Field: String]) -> [String] {
        guard let elements = reader.list(node, at: path) else { return [] }
        fields[.plugins] = path
        var names: [String] = []
        for (elementPath, element) in elements {
            guard let name = reader.string(element, elementPath) else { continue }
            guard !names.contains(name) else {
                reader.report(elementPath, at: element.location, "plugin \"\(name)\" is listed twice")
                continue
            }
            fields[.plugin(names.count)] = elementPath
            names.append(name)
        }
        return names
    }

    /// `/x` exact, `/x/*` prefix (`/*` is everything), any `{name}` segment a pattern.
    ///
    /// The literal parts of every path must be what a request path looks like after
    /// `RequestPath.normalized` (no query, no dot segments, no `//`, no escaped unreserved
    /// characters), or the rule could never match.
    mutating func pathMatch(_ text: String, at path: String, location: SourceLocation?) -> PathMatch? {
        guard text.hasPrefix("/") else {
            reader.report(path, at: location, "path \"\(text)\" must start with \"/\"")
            return nil
        }
        if text.contains("{") || text.contains("}") {
            guard reader.checkRoutePathCharacters(text, path, at: location, literal: true) else { return nil }
            switch PathPattern.parse(text) {
            case .failure(let error):
                reader.report(path, at: location, "invalid path \"\(text)\": \(error)")
                return nil
            case .success(let pattern):
                // The literal parts obey the same normal form as exact paths; normalization
                // leaves `{name}` as it is, so the corrected spelling keeps the parameters.
                let suffix = pattern.tail == .end ? "" : "/*"
                guard reader.checkRoutePathNormalized(pattern.literalPath(substitute: nil), written: text, path, at: location, spell: { $0 + suffix })
                else { return nil }
                return .pattern(pattern)
            }
        }
        guard reader.checkRoutePathCharacters(text, path, at: location, literal: true) else { return nil }
        if text.hasSuffix("/*") {
            let prefix = String(text.dropLast(2))
            guard !prefix.contains("*") else {
                reader.report(path, at: location, "\"*\" is only allowed as the final \"/*\" of path \"\(text)\"")
                return nil
            }
            guard prefix.isEmpty || reader.checkRoutePathNormalized(prefix, written: text, path, at: location, spell: { $0 == "/" ? "/*" : $0 + "/*" }) else {
                return nil
            }
            return .prefix(prefix.isEmpty ? "/" : prefix)
        }
        guard !text.contains("*"), !text.contains("{"), !text.contains("}") else {
            reader.report(path, at: location, "invalid path \"\(text)\" (use \"/x\", \"/x/*\" or \"/x/{param}\")")
            return nil
        }
        guard reader.checkRoutePathNormalized(text, written: text, path, at: location, spell: { $0 }) else { return nil }
        return .exact(text)
    }
}
