import Foundation

/// An upstream's resilience sections, read the same way in both dialects: `health_check`
/// (TOML `health`), `circuit_breaker`, `outlier_detection` and `retry`.
///
/// Only durations are spelled differently: YAML takes duration strings (`timeout: 30s`),
/// WarpDrive TOML whole seconds or milliseconds in the key's name (`timeout_secs = 30`,
/// `backoff_base_ms = 25`), as its other settings do.
extension ConfigReader {
    /// How a TOML key names its duration's unit.
    enum DurationUnit {
        case seconds, milliseconds
    }

    /// `base` in YAML; `base_secs` / `base_ms` in TOML.
    func durationKey(_ base: String, _ unit: DurationUnit) -> String {
        switch dialect {
        case .loomYAML: base
        case .warpDriveTOML: base + (unit == .seconds ? "_secs" : "_ms")
        }
    }

    /// A duration under `durationKey(base, unit)`: greater than zero, or with `zeroAllowed`
    /// at least zero.
    mutating func positiveDuration(_ table: ConfigTable, _ base: String, toml unit: DurationUnit, zeroAllowed: Bool = false) -> Duration? {
        let key = durationKey(base, unit)
        let duration: Duration?
        if dialect == .warpDriveTOML {
            duration = int(table, key, in: 0...1_000_000_000).map { unit == .seconds ? .seconds($0) : .milliseconds($0) }
        } else {
            duration = self.duration(table, key)
        }
        return zeroAllowed ? duration : positive(duration, than: .zero, table, key)
    }

    static let healthCheckBaseKeys: [(String, DurationUnit?)] = [
        ("type", nil), ("path", nil), ("interval", .seconds), ("timeout", .seconds), ("unhealthy_threshold", nil),
        ("healthy_threshold", nil), ("expected_statuses", nil),
    ]
    static let circuitBreakerBaseKeys: [(String, DurationUnit?)] = [
        ("failure_threshold", nil), ("success_threshold", nil), ("timeout", .seconds), ("half_open_requests", nil),
    ]
    static let outlierBaseKeys: [(String, DurationUnit?)] = [
        ("consecutive_failures", nil), ("base_ejection_time", .seconds), ("max_ejection_time", .seconds), ("max_ejection_percent", nil),
    ]
    static let retryBaseKeys: [(String, DurationUnit?)] = [
        ("max_retries", nil), ("backoff_base", .milliseconds), ("backoff_max", .milliseconds), ("retryable_codes", nil),
        ("per_try_timeout", .milliseconds), ("budget_percent", nil), ("min_retry_concurrency", nil), ("body_limit", nil),
    ]

    /// The keys of a section in this dialect.
    func keys(_ base: [(String, DurationUnit?)]) -> [String] {
        base.map { name, unit in unit.map { durationKey(name, $0) } ?? name }
    }

    /// TOML's `base_ejection_secs` reads better than `base_ejection_time_secs`.
    private func ejectionKey(_ base: String) -> String {
        dialect == .warpDriveTOML ? base.replacingOccurrences(of: "_time", with: "") : base
    }

    /// Reads an upstream's four sections (`healthKey`: `health_check` in YAML, `health` in
    /// TOML) and `slow_start`.
    mutating func resilience(_ table: ConfigTable, healthKey: String, into upstream: inout UpstreamConfig, fields: inout [ConfigSourceMap.Field: String]) {
        if let node = table[healthKey] {
            upstream.health = healthCheck(node, at: table.path(healthKey))
            fields[.health] = table.path(healthKey)
        }
        if let node = table["circuit_breaker"] {
            upstream.circuitBreaker = circuitBreaker(node, at: table.path("circuit_breaker"))
            fields[.circuitBreaker] = table.path("circuit_breaker")
        }
        if let node = table["outlier_detection"] {
            upstream.outlierDetection = outlierDetection(node, at: table.path("outlier_detection"))
            fields[.outlierDetection] = table.path("outlier_detection")
        }
        if let node = table["retry"] {
            upstream.retry = retry(node, at: table.path("retry"))
            fields[.retry] = table.path("retry")
        }
        let slowStartKey = durationKey("slow_start", .seconds)
        if let v = positiveDuration(table, "slow_start", toml: .seconds) {
            upstream.slowStart = v
            fields[.slowStart] = table.path(slowStartKey)
        }
    }

    /// The top-level `circuit_breaker`: the breaker of every upstream without its own.
    /// Applied after the whole file is read, wherever the section stands in it.
    mutating func defaultCircuitBreaker(_ node: ConfigNode, into config: inout LoomConfiguration) {
        let defaults = circuitBreaker(node, at: "circuit_breaker")
        for index in config.upstreams.indices where config.upstreams[index].circuitBreaker == nil {
            config.upstreams[index].circuitBreaker = defaults
        }
    }

    mutating func healthCheck(_ node: ConfigNode, at path: String) -> HealthCheckSettings {
        var health = HealthCheckSettings()
        guard let table = table(node, at: path, allowed: keys(Self.healthCheckBaseKeys)) else { return health }
        if let v = choice(table, "type", as: HealthCheckSettings.Kind.self) { health.kind = v }
        if let v = string(table, "path") {
            if v.hasPrefix("/") && RequestPath.normalized(v) != nil && !v.contains(where: { $0 == " " || $0.isNewline || $0 == "#" }) {
                health.path = v
            } else {
                report(table.path("path"), at: table["path"]?.location, "health check path \"\(v)\" must be an origin-form path such as \"/health\"")
            }
        }
        if let v = positiveDuration(table, "interval", toml: .seconds) { health.interval = v }
        if let v = positiveDuration(table, "timeout", toml: .seconds) { health.timeout = v }
        if let v = int(table, "unhealthy_threshold", in: 1...1000) { health.unhealthyThreshold = v }
        if let v = int(table, "healthy_threshold", in: 1...1000) { health.healthyThreshold = v }
        if let node = table["expected_statuses"] { health.expectedStatuses = statusRanges(node, table.path("expected_statuses"), in: 100...599) }
        if health.kind == .tcp {
            for key in ["path", "expected_statuses"] where table.has(key) {
                report(table.path(key), at: table.keyLocation(key), "\"\(key)\" only applies to HTTP health checks, not type \"tcp\"")
            }
        }
        return health
    }

    mutating func circuitBreaker(_ node: ConfigNode, at path: String) -> CircuitBreakerSettings {
        var breaker = CircuitBreakerSettings()
        guard let table = table(node, at: path, allowed: keys(Self.circuitBreakerBaseKeys)) else { return breaker }
        if let v = int(table, "failure_threshold", in: 1...255) { breaker.failureThreshold = v }
        if let v = int(table, "success_threshold", in: 1...255) { breaker.successThreshold = v }
        if let v = positiveDuration(table, "timeout", toml: .seconds) { breaker.timeout = v }
        if let v = int(table, "half_open_requests", in: 1...255) { breaker.halfOpenRequests = v }
        return breaker
    }

    mutating func outlierDetection(_ node: ConfigNode, at path: String) -> OutlierDetectionSettings {
        var outlier = OutlierDetectionSettings()
        let allowed = keys(Self.outlierBaseKeys).map(ejectionKey)
        guard let table = table(node, at: path, allowed: allowed) else { return outlier }
        if let v = int(table, "consecutive_failures", in: 1...255) { outlier.consecutiveFailures = v }
        if let v = positiveDuration(table, ejectionKey("base_ejection_time"), toml: .seconds) { outlier.baseEjectionTime = v }
        if let v = positiveDuration(table, ejectionKey("max_ejection_time"), toml: .seconds) { outlier.maxEjectionTime = v }
        if let v = int(table, "max_ejection_percent", in: 0...100) { outlier.maxEjectionPercent = v }
        if outlier.maxEjectionTime < outlier.baseEjectionTime {
            let key = durationKey(ejectionKey("max_ejection_time"), .seconds)
            report(table.path(key), at: table.keyLocation(key) ?? table.location,
                   "max ejection time (\(outlier.maxEjectionTime)) is shorter than the base ejection time (\(outlier.baseEjectionTime))")
            outlier.maxEjectionTime = outlier.baseEjectionTime  // reported once, here
        }
        return outlier
    }

    mutating func retry(_ node: ConfigNode, at path: String) -> RetrySettings {
        var retry = RetrySettings()
        guard let table = table(node, at: path, allowed: keys(Self.retryBaseKeys)) else { return retry }
        if let v = int(table, "max_retries", in: 0...10) { retry.maxRetries = v }
        if let v = positiveDuration(table, "backoff_base", toml: .milliseconds, zeroAllowed: true) { retry.backoffBase = v }
        if let v = positiveDuration(table, "backoff_max", toml: .milliseconds, zeroAllowed: true) { retry.backoffMax = v }
        if let node = table["retryable_codes"] {
            retry.retryableCodes = statusRanges(node, table.path("retryable_codes"), in: 400...599).flatMap { Array($0) }
        }
        retry.perTryTimeout = positiveDuration(table, "per_try_timeout", toml: .milliseconds)
        if let v = int(table, "budget_percent", in: 0...100) { retry.budgetPercent = v }
        if let v = int(table, "min_retry_concurrency", in: 0...100_000) { retry.minRetryConcurrency = v }
        if let v = size(table, "body_limit") {
            // Every request that may be resent keeps up to this much: a bound on memory.
            if v <= RetrySettings.maxBodyLimit {
                retry.bodyLimit = v
            } else {
                report(table.path("body_limit"), at: table["body_limit"]?.location, "body_limit must be at most 64MiB (it is held in memory per request), got \(v) bytes")
            }
        }
        if retry.backoffMax < retry.backoffBase {
            let key = durationKey("backoff_max", .milliseconds)
            report(table.path(key), at: table.keyLocation(key) ?? table.location,
                   "backoff_max (\(retry.backoffMax)) is shorter than backoff_base (\(retry.backoffBase))")
            retry.backoffMax = retry.backoffBase  // reported once, here
        }
        return retry
    }

    /// A list of statuses: integers, or `"200-299"` ranges, each within `allowed`.
    private mutating func statusRanges(_ node: ConfigNode, _ path: String, in allowed: ClosedRange<Int>) -> [ClosedRange<Int>] {
        guard let elements = list(node, at: path) else { return [] }
        if elements.isEmpty { report(path, at: node.location, "must list at least one status") }
        var ranges: [ClosedRange<Int>] = []
        for (elementPath, element) in elements {
            let text: String
            if case .scalar(let scalar) = element.value, case .integer(let number) = scalar.kind {
                text = String(number)
            } else if let string = string(element, elementPath) {
                text = string
            } else {
                continue
            }
            let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil, low <= high,
                allowed.contains(low), allowed.contains(high)
            else {
                report(elementPath, at: element.location, "invalid status \"\(text)\" (use a status \(allowed.lowerBound)–\(allowed.upperBound) or a range such as \"\(allowed.lowerBound)-\(allowed.lowerBound + 99)\")")
                continue
            }
            ranges.append(low...high)
        }
        return ranges
    }
}
