/// One routing rule: what it matches and what it does with a matching request.
public struct RouteConfig: Sendable, Equatable {
    /// Loom `id`, WarpDrive's generated `routes[N]` when unnamed.
    public var name: String
    /// Higher first; ties keep file order.
    public var priority: Int
    public var match: RouteMatch
    public var action: RouteAction
    /// Remove the matched path prefix before forwarding (`/api/users` → `/users`).
    public var stripPrefix: Bool
    /// Headers added to the request sent upstream (WarpDrive `add_headers`), in order.
    public var addRequestHeaders: [HeaderPair]
    public var timeouts: TimeoutOverrides
    /// Free text for humans (WarpDrive `description`).
    public var description: String?
    /// Planned: prefix rewrite (WarpDrive `rewrite`).
    public var rewrite: String?
    /// Planned: admin-token check (WarpDrive `require_auth`).
    public var requireAuth: Bool
    /// Planned: names of top-level `plugins` run for this route, in order (Loom `plugins`).
    public var plugins: [String]

    public init(
        name: String,
        priority: Int = 0,
        match: RouteMatch = RouteMatch(),
        action: RouteAction,
        stripPrefix: Bool = false,
        addRequestHeaders: [HeaderPair] = [],
        timeouts: TimeoutOverrides = TimeoutOverrides(),
        description: String? = nil,
        rewrite: String? = nil,
        requireAuth: Bool = false,
        plugins: [String] = []
    ) {
        self.name = name
        self.priority = priority
        self.match = match
        self.action = action
        self.stripPrefix = stripPrefix
        self.addRequestHeaders = addRequestHeaders
        self.timeouts = timeouts
        self.description = description
        self.rewrite = rewrite
        self.requireAuth = requireAuth
        self.plugins = plugins
    }

    /// The upstream name this route forwards to, if it proxies.
    public var upstreamName: String? {
        if case .proxy(let name) = action { return name }
        return nil
    }
}

/// The conditions of a route; all present conditions must hold. An empty match matches all.
public struct RouteMatch: Sendable, Equatable {
    public var path: PathMatch?
    /// Exact host, compared case-insensitively with any port removed.
    public var host: String?
    /// Allowed methods (upper case); `nil` allows every method.
    public var methods: [String]?
    /// Planned: header equality (WarpDrive `header = { name, value }`).
    public var header: HeaderPair?

    public init(path: PathMatch? = nil, host: String? = nil, methods: [String]? = nil, header: HeaderPair? = nil) {
        self.path = path
        self.host = host
        self.methods = methods
        self.header = header
    }
}

/// How a route matches the request path (case-sensitive, query excluded).
public enum PathMatch: Sendable, Equatable {
    /// The whole path equals this (Loom `/api`, WarpDrive `path_exact`).
    case exact(String)
    /// The path is this prefix or continues it at a `/` boundary (Loom `/api/*`, WarpDrive
    /// `path_prefix`). `/api` matches `/api` and `/api/users`, never `/apis`; `/` matches all.
    case prefix(String)
    /// Planned: anchored regular expression (WarpDrive `path_regex`).
    case regex(String)
    /// Segments with `{param}` parameters, optionally ending in `/*` (Loom `/users/{id}`,
    /// `/users/{id}/*`).
    case pattern(PathPattern)
}

/// What a matching route does.
public enum RouteAction: Sendable, Equatable {
    /// Forward to the named upstream.
    case proxy(upstream: String)
    /// Answer directly, like nginx `return` or Caddy `respond`.
    case respond(StaticResponse)
}

/// A fixed response a route sends without contacting an upstream.
public struct StaticResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [HeaderPair]
    public var body: String

    public init(status: Int = 200, headers: [HeaderPair] = [], body: String = "") {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// An ordered name/value pair (headers, environment entries).
public struct HeaderPair: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
