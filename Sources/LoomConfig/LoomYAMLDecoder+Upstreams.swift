/// Loom YAML `upstreams:` entries.
extension LoomYAMLDecoder {
    static let upstreamKeys = ["name", "endpoints", "load_balancer", "consistent_hash", "pool", "timeouts", "health_check",
                               "circuit_breaker", "outlier_detection", "retry", "slow_start", "protocol", "tls", "process"]

    mutating func upstreams(_ node: ConfigNode) {
        guard let elements = reader.list(node, at: "upstreams") else { return }
        for (index, (path, element)) in elements.enumerated() {
            guard let table = reader.table(element, at: path, allowed: Self.upstreamKeys) else { continue }
            let name = reader.requiredString(table, "name") ?? "upstreams[\(index)]"
            var upstream = UpstreamConfig(name: name, endpoints: [])
            var fields: [ConfigSourceMap.Field: String] = [.entity: path, .name: table.path("name")]
            var brokenEndpoints = false
            if let endpointsNode = table["endpoints"] {
                fields[.endpoints] = table.path("endpoints")
                let elements = reader.list(endpointsNode, at: table.path("endpoints"))
                brokenEndpoints = elements == nil
                var options: [EndpointOptions] = []
                for (endpointPath, endpointNode) in elements ?? [] {
                    brokenEndpoints = true  // until this element decodes
                    // `"host:port"`, or `{address, weight, backup, drain}` (Loom's map form).
                    var addressNode = endpointNode, addressPath = endpointPath
                    var option = EndpointOptions()
                    if case .map = endpointNode.value {
                        guard let entry = reader.table(endpointNode, at: endpointPath, allowed: ["address", "weight", "backup", "drain"]) else { continue }
                        if let weight = reader.int(entry, "weight", in: 1...1000) { option.weight = weight }
                        if let backup = reader.bool(entry, "backup") { option.backup = backup }
                        if let drain = reader.bool(entry, "drain") { option.drain = drain }
                        guard let node = entry["address"] else {
                            reader.report(endpointPath, at: endpointNode.location, "missing required key \"address\"")
                            continue
                        }
                        (addressNode, addressPath) = (node, entry.path("address"))
                    }
                    guard let text = reader.string(addressNode, addressPath) else { continue }
                    guard let endpoint = AddressParser.endpoint(text) else {
                        reader.report(addressPath, at: addressNode.location,
                                      "invalid endpoint \"\(text)\" (use \"host:port\", \"[::1]:port\" or \"unix:/path\")")
                        continue
                    }
                    fields[.endpoint(upstream.endpoints.count)] = endpointPath
                    upstream.endpoints.append(endpoint)
                    options.append(option)
                    brokenEndpoints = false
                }
                if options.contains(where: { $0 != EndpointOptions() }) { upstream.endpointOptions = options }
            }
            if let lb = reader.choice(table, "load_balancer", as: LoadBalancing.self) {
                upstream.loadBalancing = lb
                fields[.loadBalancing] = table.path("load_balancer")
            }
            if let key = reader.consistentHash(table, fields: &fields) { upstream.hashKey = key }
            if let pool = reader.table(table, "pool", allowed: ["max_idle", "idle_timeout"]) {
                if let v = reader.int(pool, "max_idle", in: 0...100_000) { upstream.pool.maxIdle = v }
                if let v = reader.positiveDuration(pool, "idle_timeout") { upstream.pool.idleTimeout = v }
            }
            if let timeouts = table["timeouts"] {
                upstream.timeouts = reader.timeoutOverrides(timeouts, at: table.path("timeouts"))
            }
            if let node = table["protocol"], let proto = reader.choice(node, table.path("protocol"), as: UpstreamProtocol.self) {
                upstream.protocol = proto
                fields[.protocol] = table.path("protocol")
            }
            if let node = table["tls"] {
                upstream.tls = upstreamTLS(node, at: table.path("tls"))
                fields[.tls] = table.path("tls")
            }
            reader.resilience(table, healthKey: "health_check", into: &upstream, fields: &fields)
            if let process = reader.process(table) {
                upstream.process = process
                fields[.process] = table.path("process")
            }
            if brokenEndpoints && upstream.endpoints.isEmpty {
                reader.sourceMap.upstreamsWithBrokenEndpoints.insert(config.upstreams.count)
            }
            config.upstreams.append(upstream)
            reader.sourceMap.append(.upstream, fields: fields)
        }
    }

    /// `tls: true | false | {server_name, ca_file, cert_file, key_file, verify}`.
    private mutating func upstreamTLS(_ node: ConfigNode, at path: String) -> UpstreamTLS? {
        if case .map = node.value {
            guard let table = reader.table(node, at: path, allowed: ["server_name", "ca_file", "cert_file", "key_file", "verify"]) else { return nil }
            return UpstreamTLS(
                serverName: reader.string(table, "server_name"), caFile: reader.string(table, "ca_file").map(reader.resolvedPath),
                certFile: reader.string(table, "cert_file").map(reader.resolvedPath), keyFile: reader.string(table, "key_file").map(reader.resolvedPath),
                verify: reader.bool(table, "verify") ?? true)
        }
        return reader.bool(node, path) == true ? UpstreamTLS() : nil
    }
}
