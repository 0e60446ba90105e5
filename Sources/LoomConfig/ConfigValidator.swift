import LoomSupervision

/// Dialect-independent checks on a decoded configuration: what no single value can tell on
/// its own (duplicate names, dangling upstream references, listener address clashes, port
/// ranges, strip_prefix without a prefix, upstreams without endpoints, duplicate plugin
/// names, routes naming undefined plugins, routes setting the request id header), and one
/// `.unsupported` diagnostic for every planned feature the configuration asks for.
///
/// It works on the model plus the `ConfigSourceMap` the decoder filled, so each diagnostic
/// names the key in the user's dialect and points at its line and column.
struct ConfigValidator {
    let configuration: LoomConfiguration
    let sourceMap: ConfigSourceMap
    private(set) var diagnostics: [Diagnostic] = []

    /// `decodedCleanly`: the decoder reported no errors. Only then are routes checked for
    /// shadowing: a route whose path failed to decode has no path rule left, and every
    /// "can never match" it caused would be noise next to the real error.
    /// `checks`: what the plugin host and the TLS layer find wrong with the modules and
    /// certificate files named (`none`: not checked, as in tests of the configuration alone).
    static func validate(
        _ configuration: LoomConfiguration, sourceMap: ConfigSourceMap, decodedCleanly: Bool = true, checks: ConfigChecks = .none
    ) -> [Diagnostic] {
        var validator = ConfigValidator(configuration: configuration, sourceMap: sourceMap)
        validator.checks = checks
        validator.checkListeners()
        validator.checkAdmin()
        validator.checkUpstreams()
        validator.checkPlugins()
        validator.checkRoutes()
        validator.checkPlanned()
        if decodedCleanly && !validator.diagnostics.contains(where: { $0.severity == .error }) {
            validator.checkShadowedRoutes()
        }
        return validator.diagnostics
    }

    private var checks = ConfigChecks.none

    private init(configuration: LoomConfiguration, sourceMap: ConfigSourceMap) {
        self.configuration = configuration
        self.sourceMap = sourceMap
    }

    private mutating func report(_ severity: Diagnostic.Severity, path: String, _ message: String) {
        diagnostics.append(Diagnostic(severity, at: sourceMap.location(of: path), path: path, message))
    }

    private mutating func report(_ severity: Diagnostic.Severity, _ section: ConfigSourceMap.Section, _ index: Int, _ field: ConfigSourceMap.Field, _ message: String) {
        report(severity, path: sourceMap.path(section, index, field), message)
    }

    private mutating func error(_ section: ConfigSourceMap.Section, _ index: Int, _ field: ConfigSourceMap.Field, _ message: String) {
        report(.error, section, index, field, message)
    }

    private static let ports = 1...65535

    private mutating func checkListeners() {
        var names: Set<String> = []
        // Bound addresses so far; a wildcard host (nil / 0.0.0.0 / ::) clashes with any host
        // on the same port, because the second bind would fail with EADDRINUSE.
        var bound: [(host: String?, port: Int, name: String)] = []
        for (i, listener) in configuration.listeners.enumerated() {
            if !names.insert(listener.name).inserted {
                error(.listener, i, .name, "duplicate listener name \"\(listener.name)\"")
            }
            if !Self.ports.contains(listener.port) {
                error(.listener, i, .address, "port \(listener.port) must be between 1 and 65535")
            } else if let other = bound.first(where: { $0.port == listener.port && Self.overlap($0.host, listener.host) }) {
                error(.listener, i, .address, "port \(listener.port) is already used by listener \"\(other.name)\"")
            }
            bound.append((listener.host, listener.port, listener.name))
            switch listener.protocol {
            case .http, .h2c, .grpc:
                if listener.tls != nil {
                    error(.listener, i, .tls,
                          "listener \"\(listener.name)\" has tls settings but speaks cleartext \(listener.protocol.rawValue) (use protocol: \(listener.protocol == .grpc ? "grpcs" : "https"))")
                }
            case .https, .grpcs:
                checkTLS(listener, i)
            case .http2, .http3:
                report(.unsupported, .listener, i, .protocol, "\(listener.protocol.rawValue) listeners (listener \"\(listener.name)\")")
            }
        }
    }

    /// An `https` listener's `tls`: a certificate, client verification settings that go
    /// together, and (`checks.tls`) files that load.
    private mutating func checkTLS(_ listener: ListenerConfig, _ i: Int) {
        guard let tls = listener.tls, !tls.certificates.isEmpty else {
            if listener.tls == nil, configuration.planned.acme?.enabled == true {
                // WarpDrive's https_port: its certificates come from ACME only.
                report(.unsupported, .listener, i, .protocol, "https listeners with certificates from ACME (listener \"\(listener.name)\")")
            } else {
                error(.listener, i, listener.tls == nil ? .protocol : .tls,
                      "https listener \"\(listener.name)\" needs a certificate (tls.cert_file and tls.key_file, or tls.certificates)")
            }
            return
        }
        var consistent = true
        if tls.verifiesClients && tls.clientCAFile == nil {
            error(.listener, i, .tls, "client_auth: \(tls.clientAuth!.rawValue) needs client_ca_file, the CA that signs client certificates")
            consistent = false
        }
        if !tls.verifiesClients && tls.clientCAFile != nil {
            error(.listener, i, .tls, "client_ca_file is only used with client_auth: request or require")
            consistent = false
        }
        if let header = tls.clientIdentityHeader {
            if !tls.verifiesClients {
                error(.listener, i, .tls, "client_identity_header needs client_auth: request or require (there is no client identity otherwise)")
                consistent = false
            } else if header.lowercased() == configuration.server.forwarding.requestIDHeader.lowercased() {
                error(.listener, i, .tls, "client_identity_header \"\(header)\" is the request id header, which loom sets itself")
                consistent = false
            }
        }
        guard consistent, let tlsCheck = checks.tls else { return }
        for problem in tlsCheck(tls) { error(.listener, i, .tls, "listener \"\(listener.name)\": \(problem)") }
    }

    /// The admin listener must not take a traffic listener's port, and should not be open
    /// to the network without a token (it can reload the configuration).
    private mutating func checkAdmin() {
        guard let admin = configuration.admin, admin.enabled else { return }
        if let listener = configuration.listeners.first(where: { $0.port == admin.port && Self.overlap($0.host, admin.host) }) {
            report(.error, path: "admin.address", "port \(admin.port) is already used by listener \"\(listener.name)\"")
        }
        if !admin.isLoopback && admin.token == nil {
            report(.warning, path: "admin.address", "the admin API listens beyond this machine without a token: set admin.token, or bind it to 127.0.0.1")
        }
    }

    private static func overlap(_ a: String?, _ b: String?) -> Bool {
        let wildcard: Set<String?> = [nil, "0.0.0.0", "::", "*"]
        return wildcard.contains(a) || wildcard.contains(b) || a?.lowercased() == b?.lowercased()
    }

    private mutating func checkUpstreams() {
        var names: Set<String> = []
        for (i, upstream) in configuration.upstreams.enumerated() {
            if !names.insert(upstream.name).inserted {
                error(.upstream, i, .name, "duplicate upstream name \"\(upstream.name)\"")
            }
            if upstream.endpoints.isEmpty && !sourceMap.upstreamsWithBrokenEndpoints.contains(i) {
                error(.upstream, i, .endpoints, "upstream \"\(upstream.name)\" has no endpoints")
            }
            for (j, endpoint) in upstream.endpoints.enumerated() {
                if case .tcp(_, let port) = endpoint, !Self.ports.contains(port) {
                    error(.upstream, i, .endpoint(j), "port \(port) must be between 1 and 65535")
                }
            }
            // The decoders keep these in range; a configuration built in code is checked too.
            if !upstream.endpointOptions.isEmpty && upstream.endpointOptions.count != upstream.endpoints.count {
                error(.upstream, i, .endpoints, "\(upstream.endpointOptions.count) endpoint options for \(upstream.endpoints.count) endpoints")
            }
            for (j, option) in upstream.endpointOptions.enumerated() where !(1...1000).contains(option.weight) {
                error(.upstream, i, .endpoint(j), "weight \(option.weight) must be between 1 and 1000")
            }
            if !upstream.endpoints.isEmpty && upstream.backups.allSatisfy({ $0 }) {
                error(.upstream, i, .endpoints, "upstream \"\(upstream.name)\" has only backup endpoints (at least one must be a primary)")
            }
            if !upstream.endpoints.isEmpty && upstream.draining.allSatisfy({ $0 }) {
                report(.warning, .upstream, i, .endpoints, "every endpoint of upstream \"\(upstream.name)\" is drained: requests to it get 503")
            }

            if upstream.hashKey != nil && upstream.loadBalancing != .consistentHash {
                error(.upstream, i, .hashKey, "consistent_hash has no effect unless the load balancer is consistent_hash")
            }
            checkResilience(upstream, i)
            checkUpstreamTLS(upstream, i)
            checkUpstreamProtocol(upstream, i)
        }
        checkProcessOrder()
    }

    /// `depends_on` names other supervised upstreams, without a cycle (`StartOrder`).
    private mutating func checkProcessOrder() {
        let supervised = configuration.upstreams.enumerated().compactMap { i, upstream in
            upstream.process.map { (index: i, name: upstream.name, dependsOn: $0.dependsOn) }
        }
        do {
            _ = try StartOrder(supervised.map { ($0.name, $0.dependsOn) })
        } catch {
            let process: String? = switch error {
            case .unknownDependency(let process, _), .selfDependency(let process): process
            case .cycle(let names): names.first
            }
            let index = supervised.first { $0.name == process }?.index ?? 0
            self.error(.upstream, index, .process, error.description)
        }
    }

    /// HTTP/2 to an upstream: `h2` is the TLS form, `h2c` the cleartext one, and the HTTP/1.1
    /// health probe cannot check an endpoint that speaks only HTTP/2.
    private mutating func checkUpstreamProtocol(_ upstream: UpstreamConfig, _ i: Int) {
        switch upstream.protocol {
        case .h2 where upstream.tls == nil:
            error(.upstream, i, .protocol, "upstream \"\(upstream.name)\": protocol h2 is HTTP/2 over TLS and needs tls (use h2c for cleartext HTTP/2)")
        case .h2c where upstream.tls != nil:
            error(.upstream, i, .protocol, "upstream \"\(upstream.name)\": protocol h2c is cleartext HTTP/2 but the upstream has tls (use h2)")
        default:
            break
        }
        if upstream.protocol.isHTTP2, let health = upstream.health, health.kind == .http {
            error(.upstream, i, .health,
                  "upstream \"\(upstream.name)\" speaks \(upstream.protocol.rawValue) but HTTP health checks speak HTTP/1.1 (use type: tcp)")
        }
    }

    /// An upstream's `tls`: a client certificate with its key, a name to verify unix
    /// socket endpoints against, and (`checks.upstreamTLS`) files that load.
    private mutating func checkUpstreamTLS(_ upstream: UpstreamConfig, _ i: Int) {
        guard let tls = upstream.tls else { return }
        if (tls.certFile == nil) != (tls.keyFile == nil) {
            error(.upstream, i, .tls, "tls.cert_file and tls.key_file go together (a client certificate and its key)")
            return
        }
        if let name = tls.serverName, name.isEmpty || AddressParser.isIPLiteral(name) {
            error(.upstream, i, .tls, "tls.server_name \"\(name)\" must be a DNS name (an IP address endpoint is checked against the certificate's IP names without it)")
            return
        }
        if tls.verify, tls.serverName == nil, upstream.endpoints.contains(where: { if case .unix = $0 { true } else { false } }) {
            error(.upstream, i, .tls, "TLS over a unix socket needs tls.server_name (the name to verify the certificate against) or verify: false")
            return
        }
        guard let check = checks.upstreamTLS else { return }
        for problem in check(tls) { error(.upstream, i, .tls, "upstream \"\(upstream.name)\": \(problem)") }
    }

    /// The decoders keep these in range; a configuration built in code is checked too, since
    /// the state machines clamp what they are given.
    private mutating func checkResilience(_ upstream: UpstreamConfig, _ i: Int) {
        if let breaker = upstream.circuitBreaker {
            if ![breaker.failureThreshold, breaker.successThreshold, breaker.halfOpenRequests].allSatisfy((1...255).contains) || breaker.timeout <= .zero {
                error(.upstream, i, .circuitBreaker, "circuit_breaker thresholds and half_open_requests must be 1–255 and the timeout greater than 0")
            }
        }
        if let outlier = upstream.outlierDetection {
            if !(1...255).contains(outlier.consecutiveFailures) || !(0...100).contains(outlier.maxEjectionPercent)
                || outlier.baseEjectionTime <= .zero || outlier.maxEjectionTime < outlier.baseEjectionTime
            {
                error(.upstream, i, .outlierDetection, "outlier_detection needs consecutive_failures 1–255, max_ejection_percent 0–100 and 0 < base ejection time ≤ max")
            }
        }
        let retry = upstream.retry
        if !(0...10).contains(retry.maxRetries) || !(0...100).contains(retry.budgetPercent) || retry.minRetryConcurrency < 0
            || !(0...RetrySettings.maxBodyLimit).contains(retry.bodyLimit) || retry.backoffBase < .zero || retry.backoffMax < retry.backoffBase
        {
            error(.upstream, i, .retry, "retry needs max_retries 0–10, budget_percent 0–100, body_limit up to 64MiB, and backoff_base ≤ backoff_max")
        }
        // Settings that would be read and never acted on.
        if retry.maxRetries == 0 && (!retry.retryableCodes.isEmpty || retry.perTryTimeout != nil) {
            report(.warning, .upstream, i, .retry, "retryable_codes and per_try_timeout have no effect with max_retries: 0")
        }
        let responseHeader = upstream.timeouts.responseHeader ?? configuration.server.timeouts.responseHeader
        if let perTry = retry.perTryTimeout, perTry >= responseHeader {
            report(.warning, .upstream, i, .retry,
                   "per_try_timeout (\(perTry)) is not shorter than the response-header timeout (\(responseHeader)), which ends the request first")
        }
        if upstream.slowStart != nil && upstream.health == nil && upstream.outlierDetection == nil && upstream.circuitBreaker == nil {
            error(.upstream, i, .slowStart, "slow_start needs health_check, outlier_detection or circuit_breaker (nothing else takes an endpoint out, so none comes back)")
        }
        if let health = upstream.health, health.interval <= .zero || health.timeout <= .zero || health.healthyThreshold < 1 || health.unhealthyThreshold < 1 {
            error(.upstream, i, .health, "health check interval and timeout must be greater than 0 and thresholds at least 1")
        }
    }

    /// Top-level `plugins`: unique names, and each module as the plugin host judges it
    /// (`pluginCheck`: readable, a Proxy-Wasm module of a supported ABI, only imports the
    /// host provides, and it accepts its configuration).
    private mutating func checkPlugins() {
        var names: Set<String> = []
        for (i, plugin) in configuration.plugins.enumerated() {
            if !names.insert(plugin.name).inserted {
                error(.plugin, i, .name, "duplicate plugin name \"\(plugin.name)\"")
            }
            guard let pluginCheck = checks.plugin, !plugin.path.isEmpty else { continue }
            for problem in pluginCheck(plugin) { error(.plugin, i, .path, "plugin \"\(plugin.name)\": \(problem)") }
        }
    }

    private mutating func checkRoutes() {
        var names: Set<String> = []
        let upstreamNames = configuration.upstreams.map(\.name)
        let pluginNames = configuration.plugins.map(\.name)
        for (i, route) in configuration.routes.enumerated() {
            if !names.insert(route.name).inserted {
                error(.route, i, .name, "duplicate route name \"\(route.name)\"")
            }
            if let upstream = route.upstreamName, !upstreamNames.contains(upstream) {
                error(.route, i, .upstream, "unknown upstream \"\(upstream)\"" + Spelling.didYouMean(upstream, among: upstreamNames))
            }
            let tail = route.match.path?.segmentPattern?.tail ?? PathPattern.Tail.end
            if route.stripPrefix && tail == PathPattern.Tail.end {
                error(.route, i, .stripPrefix, "strip_prefix needs a prefix path (\"/x/*\", \"/x/{id}/*\" or path_prefix)")
            }
            checkProxyOnlySettings(route, i)
            checkFilters(route, i)
            if case .redirect(let redirect) = route.action {
                checkPlaceholders(redirect.location, "redirect location", route, i, .redirect)
            }
            if case .prefix(let replacement) = route.rewrite {
                checkPlaceholders(replacement, "rewrite", route, i, .rewrite)
            }
            if route.stripPrefix && route.rewrite != nil {
                error(.route, i, .rewrite, "rewrite and strip_prefix cannot both be set (strip_prefix is rewrite \"/\")")
            } else if case .prefix = route.rewrite, tail == PathPattern.Tail.end {
                error(.route, i, .rewrite, "a prefix rewrite needs a prefix path (\"/x/*\", \"/x/{id}/*\" or path_prefix); use {regex, replacement} otherwise")
            }
            if route.requireAuth && configuration.server.adminToken == nil {
                report(.warning, .route, i, .requireAuth,
                       "require_auth without server.admin_token: every request to route \"\(route.name)\" gets 401 (set admin_token, e.g. \"${ADMIN_TOKEN}\")")
            }
            for (j, plugin) in route.plugins.enumerated() where !pluginNames.contains(plugin) {
                error(.route, i, .plugin(j), "unknown plugin \"\(plugin)\"" + Spelling.didYouMean(plugin, among: pluginNames))
            }
            checkRequestIDHeader(route, i)
        }
        if configuration.routes.isEmpty && sourceMap.routeEntriesInSource == 0 {
            report(.warning, path: "routes", "no routes: every request will get 404")
        }
    }

    /// One CORS policy per route: two `cors` filters in one chain (the top-level section or a
    /// global filter, and the route's) would answer preflights twice over.
    private mutating func checkFilters(_ route: RouteConfig, _ i: Int) {
        let chain = configuration.filterChain(for: route)
        let corsCount = chain.filter { $0.type == "cors" }.count
        if corsCount > 0, let methods = route.match.methods, !methods.contains("OPTIONS") {
            report(.warning, .route, i, .name,
                   "route \"\(route.name)\" runs a cors filter but its methods leave out OPTIONS: CORS preflights get 405 (add OPTIONS)")
        }
        if corsCount > 1 {
            error(.route, i, route.filters.isEmpty ? .name : .filters, "route \"\(route.name)\" would run \(corsCount) cors filters (the top-level cors section counts as one): configure CORS once")
        }
    }

    /// Settings that only shape what is sent upstream and what comes back: on a route that
    /// answers by itself (`respond`, `redirect`, `static`) they would be read and never used.
    /// A `static` route uses `strip_prefix` (the file path starts after the prefix) and its
    /// response header rules (`Cache-Control`, say).
    private mutating func checkProxyOnlySettings(_ route: RouteConfig, _ i: Int) {
        let answer: String
        var files = false
        switch route.action {
        case .proxy: return
        case .respond: answer = "respond"
        case .redirect: answer = "redirect"
        case .files:
            answer = "static"
            files = true
        }
        func refuse(_ field: ConfigSourceMap.Field, _ setting: String) {
            error(.route, i, field, "\(setting) has no effect on a \(answer) route (it applies to what is sent to an upstream)")
        }
        if route.stripPrefix && !files { refuse(.stripPrefix, "strip_prefix") }
        if route.rewrite != nil { refuse(.rewrite, "rewrite") }
        if route.timeouts != TimeoutOverrides() { refuse(.timeouts, "a timeout") }
        if route.retryNonIdempotent { refuse(.retryNonIdempotent, "retry_non_idempotent") }
        let responseRules = [ConfigReader.responseHeaderKeys.add, ConfigReader.responseHeaderKeys.set, ConfigReader.responseHeaderKeys.remove]
        for (key, names) in Self.headerRuleNames(route) where !names.isEmpty && !(files && responseRules.contains(key)) {
            refuse(.headerRule(key, 0), key)
        }
    }

    /// The names each header rule list of `route` sets, adds or removes, by config key.
    private static func headerRuleNames(_ route: RouteConfig) -> [(key: String, names: [String])] {
        let sides = [(ConfigReader.requestHeaderKeys, route.requestHeaders), (ConfigReader.responseHeaderKeys, route.responseHeaders)]
        return sides.flatMap { keys, rules in
            [(keys.add, rules.add.map(\.name)), (keys.set, rules.set.map(\.name)), (keys.remove, rules.remove)]
        }
    }

    /// `{name}` in a redirect location or prefix rewrite must name a parameter of the path.
    private mutating func checkPlaceholders(_ text: String, _ what: String, _ route: RouteConfig, _ i: Int, _ field: ConfigSourceMap.Field) {
        let names = route.parameterNames
        guard let placeholders = RouteRedirect.placeholders(text) else {
            error(.route, i, field, "\(what) \"\(text)\" has a \"{\" without \"}\"")
            return
        }
        for name in placeholders where !names.contains(name) {
            error(.route, i, field, "\(what) uses {\(name)}, which is not a parameter of the route's path")
        }
    }

    /// A route that an earlier one (in matching order) takes every request from can never
    /// match: almost always a mistake of order, such as `/users/{id}` before `/users/me`.
    private mutating func checkShadowedRoutes() {
        let routes = configuration.routes
        // File indices in matching order (as `LoomConfiguration.orderedRoutes`).
        let order = routes.indices.sorted { (routes[$0].priority, -$0) > (routes[$1].priority, -$1) }
        for (position, index) in order.enumerated() {
            guard let earlier = order[..<position].first(where: { routes[$0].match.covers(routes[index].match) }) else { continue }
            report(.warning, .route, index, .name,
                   "route \"\(routes[index].name)\" can never match: route \"\(routes[earlier].name)\" comes first and takes every request it would "
                   + "(move it earlier or give it a higher priority)")
        }
    }

    /// Loom sets the request id header itself, upstream and back to the client; a route that
    /// also adds it (`add_headers`) or answers with it (`respond.headers`) would put two ids
    /// on the wire. Names compare case-insensitively.
    private mutating func checkRequestIDHeader(_ route: RouteConfig, _ i: Int) {
        let requestID = configuration.server.forwarding.requestIDHeader.lowercased()
        func message(_ name: String) -> String {
            "header \"\(name)\" is the request id header (server.forwarding.request_id_header), which loom sets itself"
        }
        for (key, names) in Self.headerRuleNames(route) {
            for (j, name) in names.enumerated() where name.lowercased() == requestID {
                error(.route, i, .headerRule(key, j), message(name))
            }
        }
        if case .respond(let response) = route.action {
            for (j, header) in response.headers.enumerated() where header.name.lowercased() == requestID {
                error(.route, i, .responseHeader(j), message(header.name))
            }
        }
    }

    private mutating func checkPlanned() {
        let planned = configuration.planned
        if planned.acme?.enabled == true { report(.unsupported, path: sourceMap.path(.acme), "automatic TLS certificates (ACME)") }
        if planned.cache != nil { report(.unsupported, path: sourceMap.path(.cache), "response caching") }
        if planned.postgres != nil { report(.unsupported, path: sourceMap.path(.postgres), "Postgres cache invalidation") }
        let sendfile = configuration.xSendfile
        if sendfile.enabled && sendfile.roots.isEmpty && sendfile.accelMappings.isEmpty {
            // WarpDrive's flag alone loads (its files must), but serves nothing: loom never
            // serves a file outside the directories it was given.
            report(.warning, path: sourceMap.path(.xSendfile),
                   "X-Sendfile is on but no directory is allowed: upstream X-Sendfile responses get 403 (list them in x_sendfile_roots / x_sendfile.roots)")
        }
        for section in planned.sections {
            report(.unsupported, path: section.path, section.feature)
        }
    }
}
