import Benchmark
import LoomRouting

/// Route match: `LinearRouter.match` over the gateway's 32 routes, cycling through a mix of
/// requests that match early, late, only after a method mismatch, not at all (405 and 404).
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
        let router = LinearRouter(orderedRoutes: GatewayConfiguration.configuration.orderedRoutes)
        let requests = requests
        Benchmark("Route match (32 routes, 12-request mix)") { benchmark in
            var index = 0
            for _ in benchmark.scaledIterations {
                let request = requests[index]
                blackHole(router.match(method: request.method, host: request.host, path: request.path))
                index = index == requests.count - 1 ? 0 : index + 1
            }
        }
    }
}
