import Foundation
import LoomConfig

/// What the running engine reports about itself, as JSON-ready trees: the admin API and the
/// control socket give the same answers (field names documented in
/// docs/admin-api.openapi.json).
enum EngineReport {
    /// Version, uptime, configuration generation and source, pid, threads, phase.
    static func info(_ engine: ProxyEngine, generation: Int, version: String) -> [String: Any] {
        let source: String = switch engine.store.current.configuration.origin {
        case .loomYAML(let path), .warpDriveTOML(let path): path
        case .environment: "environment"
        }
        return [
            "version": version,
            "uptime_seconds": Double((ContinuousClock.now - engine.startedAt).components.seconds),
            "config_generation": generation,
            "config_source": source,
            "pid": Int(getpid()),
            "worker_threads": engine.loopCount,
            "phase": engine.phase.rawValue,
        ]
    }

    /// Routes in matching order.
    static func routes(_ snapshot: ProxySnapshot) -> [[String: Any]] {
        snapshot.routes.map { route -> [String: Any] in
            let config = route.config
            var object: [String: Any] = [
                "name": config.name, "priority": config.priority, "match": ConfigDump.tree(config.match),
                "filters": snapshot.configuration.filterChain(for: config).map(\.type), "plugins": config.plugins,
            ]
            switch config.action {
            case .proxy(let upstream):
                object["action"] = "proxy"
                object["upstream"] = upstream
            case .respond: object["action"] = "respond"
            case .redirect: object["action"] = "redirect"
            case .files: object["action"] = "static"
            }
            if let description = config.description { object["description"] = description }
            return object
        }
    }

    /// Supervised processes in start order: state, pid, restarts, uptime, last exit.
    static func processes(_ engine: ProxyEngine) async -> [[String: Any]] {
        let statuses = (try? await engine.supervisor.statuses().get()) ?? []
        return statuses.map { status in
            var object: [String: Any] = ["name": status.name, "state": status.state.name, "restarts": status.restarts]
            if let pid = status.pid { object["pid"] = Int(pid) }
            if let uptime = status.uptimeSeconds { object["uptime_seconds"] = Int(uptime) }
            if let exit = status.lastExit { object["last_exit"] = exit }
            return object
        }
    }

    /// Upstreams in configuration order, each endpoint with its options, load and health.
    static func upstreams(_ engine: ProxyEngine) async -> [[String: Any]] {
        let sample = await engine.sample()
        let now = LoopContext.millis(.now())
        return engine.store.current.upstreams.map { upstream -> [String: Any] in
            let options = upstream.config.entries.map(\.options)
            let endpoints = upstream.endpoints.indices.map { index -> [String: Any] in
                let endpoint = upstream.endpoints[index]
                var object: [String: Any] = [
                    "address": endpoint.description,
                    "weight": options[index].weight,
                    "backup": options[index].backup,
                    "draining": options[index].drain,
                    "in_flight": sample.inFlight[EndpointKey(upstream: upstream.name, endpoint: endpoint)] ?? 0,
                    "idle_connections": sample.idlePooled[endpoint] ?? 0,
                    "available": upstream.isAvailable(index, now: now),
                ]
                object.merge(healthFields(upstream, index)) { $1 }
                return object
            }
            return ["name": upstream.name, "load_balancer": upstream.config.loadBalancing.rawValue, "endpoints": endpoints]
        }
    }

    /// `health_check` (passing/failing/none), `circuit` (closed/open/half_open/none),
    /// `ejected` and `ejections` of one endpoint.
    static func healthFields(_ upstream: ProxySnapshot.Upstream, _ index: Int) -> [String: Any] {
        guard let health = upstream.health else {
            return ["health_check": "none", "circuit": "none", "ejected": false, "ejections": 0]
        }
        let states = health.states(index)
        let circuit: String = switch states.breaker?.phase {
        case nil: "none"
        case .closed?: "closed"
        case .open?: "open"
        case .halfOpen?: "half_open"
        }
        return [
            "health_check": upstream.config.health == nil ? "none" : (health.passesActiveChecks(index) ? "passing" : "failing"),
            "circuit": circuit,
            "ejected": states.outlier?.ejected ?? false,
            "ejections": states.outlier?.ejections ?? 0,
        ]
    }
}
