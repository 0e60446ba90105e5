import LoomConfig

/// A realistic gateway configuration shared by the benchmarks: 32 routes over six virtual
/// hosts, with exact paths, prefixes, method-restricted routes and per-host catch-alls, in the
/// shape a Rails/SPA deployment behind Loom has.
///
/// The order matters to `LinearRouter` (a first-match scan): host-less health checks come
/// first, as operators write them, and catch-alls last, so some requests match early, some
/// late, and an unknown host scans the whole table.
enum GatewayConfiguration {
    static let upstreamName = "app"

    static let configuration: LoomConfiguration = {
        let upstream = UpstreamConfig(name: upstreamName, endpoints: [.tcp(host: "10.0.0.5", port: 3000)])
        return LoomConfiguration(origin: .environment, upstreams: [upstream], routes: routes)
    }()

    /// The route the header-rewrite benchmark's request matches: it sets `X-Forwarded-Host`
    /// itself (as WarpDrive's example does), so Loom must not generate that one.
    static let ordersRoute = route(
        "api-orders", .prefix("/api/v1/orders"), host: api,
        addHeaders: [HeaderPair(name: "X-Forwarded-Host", value: "api.example.com"), HeaderPair(name: "X-Gateway", value: "loom")])

    private static let api = "api.example.com"
    private static let www = "www.example.com"
    private static let admin = "admin.example.com"
    private static let assets = "static.example.com"

    private static let routes: [RouteConfig] = [
        route("healthz", .exact("/healthz"), methods: ["GET", "HEAD"]),
        route("readyz", .exact("/readyz"), methods: ["GET", "HEAD"]),
        route("metrics", .exact("/metrics"), host: admin),
        route("favicon", .exact("/favicon.ico"), host: www),
        route("robots", .exact("/robots.txt")),
        route("api-users-write", .prefix("/api/v1/users"), host: api, methods: ["POST", "PUT", "PATCH", "DELETE"]),
        route("api-users-read", .prefix("/api/v1/users"), host: api, methods: ["GET", "HEAD"]),
        ordersRoute,
        route("api-invoices", .prefix("/api/v1/invoices"), host: api, methods: ["GET"]),
        route("api-payments", .prefix("/api/v1/payments"), host: api, methods: ["POST"]),
        route("api-search", .prefix("/api/v1/search"), host: api, methods: ["GET"]),
        route("api-webhooks", .prefix("/api/v1/webhooks"), host: api, methods: ["POST"]),
        route("api-v2", .prefix("/api/v2"), host: api, strip: true),
        route("graphql", .exact("/graphql"), host: api, methods: ["GET", "POST"]),
        route("api-rest", .prefix("/api"), host: api),
        route("sidekiq", .prefix("/sidekiq"), host: admin, strip: true),
        route("flipper", .prefix("/flipper"), host: admin),
        route("admin", .prefix("/"), host: admin),
        route("cable", .prefix("/cable"), host: www),
        route("assets", .prefix("/assets/"), host: assets),
        route("packs", .prefix("/packs/"), host: assets),
        route("uploads", .prefix("/uploads/"), host: assets, methods: ["GET", "HEAD"]),
        route("static", .prefix("/"), host: assets),
        route("login", .exact("/login"), host: www),
        route("logout", .exact("/logout"), host: www, methods: ["POST"]),
        route("account", .prefix("/account"), host: www),
        route("checkout", .prefix("/checkout"), host: www),
        route("blog", .prefix("/blog"), host: www),
        route("docs", .prefix("/docs"), host: www),
        route("www", .prefix("/"), host: www),
        route("status", .prefix("/"), host: "status.example.com"),
        route("legacy", .prefix("/v1"), host: "legacy.example.com", methods: ["GET"]),
    ]

    private static func route(
        _ name: String, _ path: PathMatch, host: String? = nil, methods: [String]? = nil, strip: Bool = false,
        addHeaders: [HeaderPair] = []
    ) -> RouteConfig {
        RouteConfig(
            name: name, match: RouteMatch(path: path, host: host, methods: methods),
            action: .proxy(upstream: upstreamName), stripPrefix: strip, addRequestHeaders: addHeaders)
    }
}
