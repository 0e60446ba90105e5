/// WarpDrive `[[routes]]`: path_prefix / path_exact / path_regex, host, methods, header(s), query,
/// upstream or respond, strip_prefix, rewrite, add_headers, timeouts, require_auth.
extension WarpDriveTOMLDecoder {
    static let routeKeys = ["name", "priority", "path_prefix", "path_exact", "path_regex", "host", "methods", "header", "headers", "query",
                            "upstream", "respond", "redirect", "static", "strip_prefix", "rewrite", "add_headers", "set_headers", "remove_headers", "add_response_headers", "retry_non_idempotent", "filters",
                            "set_response_headers", "remove_response_headers", "read_timeout_secs",
                            "connect_timeout_secs", "request_timeout_secs", "description", "require_auth"]

    mutating func routes(_ node: ConfigNode) {
        guard let elements = reader.list(node, at: "routes") else { return }
        reader.sourceMap.routeEntriesInSource += elements.count
        for (path, element) in elements {
            guard let table = reader.table(element, at: path, allowed: Self.routeKeys) else { continue }
            route(table)
        }
    }

    private mutating func route(_ table: ConfigTable) {
        // Unnamed WarpDrive routes are called by their key path, which is unique.
        let name = reader.string(table, "name") ?? table.path
        var fields: [ConfigSourceMap.Field: String] = [.entity: table.path, .name: table.has("name") ? table.path("name") : table.path]
        var match = RouteMatch()
        let pathKeys = ["path_prefix", "path_exact", "path_regex"].filter(table.has)
        if pathKeys.count > 1 {
            reader.report(table.path(pathKeys[1]), at: table.keyLocation(pathKeys[1]),
                          "only one of \"path_prefix\", \"path_exact\" and \"path_regex\" may be set")
        } else if let key = pathKeys.first, let text = reader.string(table, key) {
            match.path = pathMatch(key: key, text, table: table)
            fields[.path] = table.path(key)
        }
        match.host = reader.routeHost(table, "host")
        if let methods = table["methods"] { match.methods = reader.methods(methods, at: table.path("methods")) }
        // WarpDrive's `header = { name, value }` is one condition; `headers` takes several.
        if let header = reader.table(table, "header", allowed: ["name", "value", "present", "regex"]),
            let condition = reader.fieldCondition(header, .header) {
            match.headers.append(condition)
        }
        reader.routeConditions(table, into: &match)
        // Every field is decoded and checked even when the action is unusable, so one run
        // reports all of the route's problems; only then is the route dropped.
        let action = reader.routeAction(table, fields: &fields)
        var route = RouteConfig(name: name, match: match, action: action ?? .respond(StaticResponse()))
        if let v = reader.int(table, "priority") { route.priority = v }
        if let v = reader.bool(table, "strip_prefix") {
            route.stripPrefix = v
            fields[.stripPrefix] = table.path("strip_prefix")
        }
        reader.forwardingChanges(table, into: &route, fields: &fields)
        reader.routeFilters(table, into: &route, fields: &fields)
        // WarpDrive's read timeout covers both waiting for the response head and silences
        // while streaming it; Loom splits those, so it sets both.
        if let read = reader.positiveSeconds(table, "read_timeout_secs") {
            route.timeouts.responseHeader = read
            route.timeouts.idle = read
        }
        route.timeouts.connect = reader.positiveSeconds(table, "connect_timeout_secs")
        if let key = ["read_timeout_secs", "connect_timeout_secs", "request_timeout_secs"].first(where: table.has) {
            fields[.timeouts] = table.path(key)
        }
        // 0 lifts a global whole-request limit for this route (see `TimeoutOverrides.request`).
        if let request = reader.seconds(table, "request_timeout_secs") { route.timeouts.request = request }
        route.description = reader.string(table, "description")
        if let auth = reader.bool(table, "require_auth") {
            route.requireAuth = auth
            fields[.requireAuth] = table.path("require_auth")
        }
        guard action != nil else { return }
        config.routes.append(route)
        reader.sourceMap.append(.route, fields: fields)
    }

    /// `path_regex` is only checked for characters no request path has and for compiling;
    /// `path_prefix` and `path_exact` must also be in the form `RequestPath.normalized` gives
    /// request paths, or the rule could never match.
    private mutating func pathMatch(key: String, _ text: String, table: ConfigTable) -> PathMatch? {
        let path = table.path(key), location = table[key]?.location
        if key == "path_regex" { return reader.regexPath(text, path, at: location) }
        guard text.hasPrefix("/") else {
            reader.report(path, at: location, "path \"\(text)\" must start with \"/\"")
            return nil
        }
        guard reader.checkRoutePathCharacters(text, path, at: location, literal: true),
            reader.checkRoutePathNormalized(text, written: text, path, at: location, spell: { $0 })
        else { return nil }
        return key == "path_exact" ? .exact(text) : .prefix(text)
    }
}
