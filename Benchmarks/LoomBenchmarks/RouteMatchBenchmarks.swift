import Benchmark
import LoomConfig
import LoomRouting

/// Route match: the gateway's 32 routes, cycling through a mix of requests that match early,
/// late, only after a method mismatch, not at all (405 and 404); and generated tables of 100,
/// 1,000 and 10,000 routes (issue 5: ≤ 100 ns median at 10,000 routes, no allocation).
enum RouteMatchBenchmarks {
    /// (method, Host value as sent, path without the query). Hosts carry ports and mixed case
    /// where clients send them, since normalizing them is part of the match's cost.
    static let requests: [(method: String, host: String?, path: String)] = [
        ("GET", "api.example.com", "/api/v1/users/42"),  // after a method mismatch on the write route
        ("POST", "api.example.com", "/api/v1/payments"),
        ("GET", "www.example.com", "/"),  // the www catch-all, late in the table
        ("GET", "www.example.com:8443", "/blog/2025/11/loom-is-fast"),
        ("GET", "static.example.com", "/assets/application-3f2a9c1e.js"),
        ("GET", "10.0.0.12:8080", "/healthz"),  // first route, load balancer probe by IP
        ("GET", "Admin.Example.com", "/sidekiq/queues/default"),
        ("DELETE", "api.example.com", "/api/v1/invoices/9"),  // GET-only route, then /api
        ("POST", "api.example.com", "/graphql"),
        ("GET", "api.example.com", "/api/v2/orders"),
        ("PUT", "legacy.example.com", "/v1/things/3"),  // 405: the only candidate is GET-only
        ("GET", "unknown.example.net", "/"),  // 404 after scanning every route
    ]

    static func register() {
        let ordered = GatewayConfiguration.configuration.orderedRoutes
        let linear = LinearRouter(orderedRoutes: ordered)
        let compiled = CompiledRouter(orderedRoutes: ordered)
        let requests = requests
        Benchmark("Route match (32 routes, 12-request mix, linear)") { benchmark in
            run(benchmark, requests) { linear.match(method: $0, host: $1, path: $2) }
        }
        Benchmark("Route match (32 routes, 12-request mix, compiled)") { benchmark in
            run(benchmark, requests) { compiled.match(method: $0, host: $1, path: $2) }
        }
        // The loop without a match: what the figures below include besides the router.
        let baseline = GeneratedTable(routes: 100).requests
        Benchmark("Route match baseline (request fetch only)") { benchmark in
            run(benchmark, baseline) { method, _, _ in method.isEmpty ? .notFound : .methodNotAllowed(allowed: []) }
        }
        for count in [100, 1_000, 10_000] {
            let table = GeneratedTable(routes: count)
            let ordered = LoomConfiguration(origin: .environment, routes: table.routes).orderedRoutes
            let compiled = CompiledRouter(orderedRoutes: ordered)
            Benchmark("Route match (\(count) routes, hits, compiled)") { benchmark in
                run(benchmark, table.requests) { compiled.match(method: $0, host: $1, path: $2) }
            }
            // The reference scan, for scale (it allocates: it lower-cases the host).
            guard count <= 1_000 else { continue }
            let linear = LinearRouter(orderedRoutes: ordered)
            Benchmark("Route match (\(count) routes, hits, linear)") { benchmark in
                run(benchmark, table.requests) { linear.match(method: $0, host: $1, path: $2) }
            }
        }
    }

    private static func run(
        _ benchmark: Benchmark, _ requests: [(method: String, host: String?, path: String)],
        _ match: (String, String?, String) -> RouteOutcome
    ) {
        var index = 0
        for _ in benchmark.scaledIterations {
            let request = requests[index]
            blackHole(match(request.method, request.host, request.path))
            index = index == requests.count - 1 ? 0 : index + 1
        }
    }

    /// A multi-tenant table: one host per ten routes (`t7.example.com`), each with exact,
    /// prefix, parameter and method-restricted routes and a catch-all, plus requests that hit
    /// every kind of them across the tenants (ports and upper case included, as clients send).
    struct GeneratedTable {
        var routes: [RouteConfig] = []
        var requests: [(method: String, host: String?, path: String)] = []

        static let perTenant: [(path: String, methods: [String]?)] = [
            ("/healthz", nil), ("/login", ["POST"]), ("/api/v1/users/{id}", nil), ("/api/v1/users/{id}/orders", nil),
            ("/api/v1/orders/*", nil), ("/api/v2/*", ["GET", "HEAD"]), ("/static/*", nil), ("/users/{id}/settings", nil),
            ("/webhooks/{provider}", ["POST"]), ("/*", nil),
        ]
        static let paths: [(method: String, path: String)] = [
            ("GET", "/healthz"), ("POST", "/login"), ("GET", "/api/v1/users/42"), ("GET", "/api/v1/users/42/orders"),
            ("GET", "/api/v1/orders/2025/11"), ("GET", "/api/v2/catalog"), ("GET", "/static/app-3f2a9c1e.js"),
            ("PUT", "/users/7/settings"), ("POST", "/webhooks/stripe"), ("GET", "/about/team"),
        ]

        init(routes count: Int) {
            let tenants = count / Self.perTenant.count
            for tenant in 0..<tenants {
                for (index, rule) in Self.perTenant.enumerated() {
                    let path: PathMatch
                    if rule.path.contains("{") {
                        guard case .success(let pattern) = PathPattern.parse(rule.path) else { fatalError(rule.path) }
                        path = .pattern(pattern)
                    } else if rule.path.hasSuffix("/*") {
                        path = .prefix(rule.path == "/*" ? "/" : String(rule.path.dropLast(2)))
                    } else {
                        path = .exact(rule.path)
                    }
                    routes.append(RouteConfig(
                        name: "t\(tenant)-\(index)", match: RouteMatch(path: path, host: "t\(tenant).example.com", methods: rule.methods),
                        action: .proxy(upstream: "u")))
                }
            }
            for i in 0..<256 {
                // Spread over the tenants deterministically (7919 is prime), so runs compare.
                let tenant = i * 7_919 % tenants
                let request = Self.paths[i % Self.paths.count]
                let host = i % 4 == 0 ? "T\(tenant).Example.com:8443" : "t\(tenant).example.com"
                requests.append((request.method, host, request.path))
            }
        }
    }
}
