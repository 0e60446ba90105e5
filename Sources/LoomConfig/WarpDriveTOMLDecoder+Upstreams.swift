/// WarpDrive `[upstreams.NAME]` tables: one endpoint (`host`+`port` or `socket`) or a pool of
/// `[[upstreams.NAME.instances]]`, plus strategy, health, process, pool and timeouts.
extension WarpDriveTOMLDecoder {
    static let upstreamKeys = ["host", "port", "socket", "instances", "strategy", "consistent_hash", "health", "process", "pool",
                               "connect_timeout_secs", "read_timeout_secs", "circuit_breaker", "outlier_detection", "retry", "slow_start_secs"]

    mutating func upstreams(_ node: ConfigNode) {
        guard case .map(let entries) = node.value else {
            reader.report("upstreams", at: node.location, "expected a table of upstreams ([upstreams.NAME]), got \(reader.describe(node))")
            return
        }
        for entry in entries {
            let path = "upstreams.\(entry.key)"
            reader.sourceMap.locations[path] = entry.keyLocation ?? entry.value.location
            guard let table = reader.table(entry.value, at: path, allowed: Self.upstreamKeys) else { continue }
            upstream(named: entry.key, table)
        }
    }

    private mutating func upstream(named name: String, _ table: ConfigTable) {
        var upstream = UpstreamConfig(name: name, endpoints: [])
        var fields: [ConfigSourceMap.Field: String] = [.entity: table.path, .name: table.path]
        if let instancesNode = table["instances"] {
            if let conflict = ["host", "port", "socket"].first(where: table.has) {
                reader.report(table.path(conflict), at: table.keyLocation(conflict),
                              "\"\(conflict)\" cannot be combined with [[\(table.path).instances]]")
            }
            fields[.endpoints] = table.path("instances")
            var options: [EndpointOptions] = []
            for (instancePath, instanceNode) in reader.list(instancesNode, at: table.path("instances")) ?? [] {
                guard let instance = reader.table(instanceNode, at: instancePath, allowed: ["host", "port", "socket", "weight", "backup", "drain"]) else { continue }
                var option = EndpointOptions()
                if let weight = reader.int(instance, "weight", in: 1...1000) { option.weight = weight }
                if let backup = reader.bool(instance, "backup") { option.backup = backup }
                if let drain = reader.bool(instance, "drain") { option.drain = drain }
                if let (endpoint, endpointPath) = endpoint(instance, isInstance: true) {
                    fields[.endpoint(upstream.endpoints.count)] = endpointPath
                    upstream.endpoints.append(endpoint)
                    options.append(option)
                }
            }
            if options.contains(where: { $0 != EndpointOptions() }) { upstream.endpointOptions = options }
        } else if let (endpoint, endpointPath) = endpoint(table, isInstance: false) {
            fields[.endpoint(0)] = endpointPath
            upstream.endpoints.append(endpoint)
        }
        if let key = reader.consistentHash(table, fields: &fields) { upstream.hashKey = key }
        if let strategy = reader.choice(table, "strategy", as: LoadBalancing.self) {
            upstream.loadBalancing = strategy
            fields[.loadBalancing] = table.path("strategy")
        }
        reader.resilience(table, healthKey: "health", into: &upstream, fields: &fields)
        if let process = reader.process(table) {
            upstream.process = process
            fields[.process] = table.path("process")
        }
        if let pool = reader.table(table, "pool", allowed: ["max_idle", "idle_timeout_secs"]) {
            if let v = reader.int(pool, "max_idle", in: 0...100_000) { upstream.pool.maxIdle = v }
            if let v = reader.positiveSeconds(pool, "idle_timeout_secs") { upstream.pool.idleTimeout = v }
        }
        upstream.timeouts.connect = reader.positiveSeconds(table, "connect_timeout_secs")
        if let read = reader.positiveSeconds(table, "read_timeout_secs") {
            upstream.timeouts.responseHeader = read
            upstream.timeouts.idle = read
        }
        // Endpoint keys were written but none decoded: already reported, skip "no endpoints".
        if upstream.endpoints.isEmpty && ["host", "port", "socket", "instances"].contains(where: table.has) {
            if !(table["instances"].map { if case .sequence(let items) = $0.value { items.isEmpty } else { false } } ?? false) {
                reader.sourceMap.upstreamsWithBrokenEndpoints.insert(config.upstreams.count)
            }
        }
        config.upstreams.append(upstream)
        reader.sourceMap.append(.upstream, fields: fields)
    }

    /// `host` + `port`, or `socket`; returns the endpoint and the key path to blame for it.
    /// `host` is a name, an IPv4 address or an IPv6 address (`::1` or `[::1]`), checked by
    /// `AddressParser.host` like YAML endpoint hosts: no port, scheme or spaces.
    /// Nothing at all is not an error here: the validator reports upstreams without endpoints.
    private mutating func endpoint(_ table: ConfigTable, isInstance: Bool) -> (Endpoint, String)? {
        let host = reader.string(table, "host")
        let port = reader.int(table, "port")
        let socket = reader.string(table, "socket")
        if table.has("socket") {
            if let conflict = ["host", "port"].first(where: table.has) {
                reader.report(table.path(conflict), at: table.keyLocation(conflict), "\"\(conflict)\" cannot be combined with \"socket\"")
                return nil
            }
            guard let socket else { return nil }
            guard !socket.isEmpty else {
                reader.report(table.path("socket"), at: table["socket"]?.location, "socket path must not be empty")
                return nil
            }
            return (.unix(path: socket), table.path("socket"))
        }
        // Same host rules as YAML endpoints (`AddressParser`); IPv6 with or without brackets.
        var checkedHost: String?
        if let host {
            switch AddressParser.host(host, allowBareIPv6: true) {
            case .success(let value): checkedHost = value
            case .failure(let problem):
                reader.report(table.path("host"), at: table["host"]?.location, problem.message(host, portSetting: "\"port\""))
            }
        }
        switch (table.has("host"), table.has("port")) {
        case (true, false):
            reader.report(table.path, at: table.keyLocation("host"), "missing required key \"port\" (needed with \"host\")")
        case (false, true):
            reader.report(table.path, at: table.keyLocation("port"), "missing required key \"host\" (needed with \"port\")")
        case (true, true):
            guard let checkedHost, let port else { return nil }
            return (.tcp(host: checkedHost, port: port), table.path("port"))
        case (false, false):
            if isInstance {
                reader.report(table.path, at: table.location, "instance needs \"host\" and \"port\", or \"socket\"")
            }
        }
        return nil
    }
}
