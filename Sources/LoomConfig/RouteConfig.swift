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
    /// Changes to the request head sent upstream: `add_headers` (WarpDrive's too),
    /// `set_headers`, `remove_headers`.
    public var requestHeaders: HeaderRules
    /// Changes to the response head of proxied responses: `add_response_headers`,
    /// `set_response_headers`, `remove_response_headers`.
    public var responseHeaders: HeaderRules

    /// `requestHeaders.add`: headers added to the request sent upstream, in order.
    public var addRequestHeaders: [HeaderPair] {
        get { requestHeaders.add }
        set { requestHeaders.add = newValue }
    }
    public var timeouts: TimeoutOverrides
    /// Free text for humans (WarpDrive `description`).
    public var description: String?
    /// How the path sent upstream differs from the request's (WarpDrive `rewrite`).
    public var rewrite: PathRewrite?
    /// Retry this route's requests after a failure that may have reached the upstream (a
    /// reset, a per-try timeout, a retryable status) even when the method is not idempotent
    /// (`retry_non_idempotent`): for POST endpoints known to be safe to repeat.
    public var retryNonIdempotent = false
    /// Filters run for this route after the global ones, in order (`filters`).
    public var filters: [FilterConfig] = []
    /// WarpDrive `require_auth`: the request must carry `server.admin_token` in `X-Admin-Token`.
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
        rewrite: PathRewrite? = nil,
        requireAuth: Bool = false,
        plugins: [String] = []
    ) {
        self.name = name
        self.priority = priority
        self.match = match
        self.action = action
        self.stripPrefix = stripPrefix
        self.requestHeaders = HeaderRules(add: addRequestHeaders)
        self.responseHeaders = HeaderRules()
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
    /// Host compared case-insensitively with any port removed: exact, or `*.example.com`
    /// (one or more labels before `.example.com`).
    public var host: String?
    /// Allowed methods (upper case); `nil` allows every method.
    public var methods: [String]?
    /// Request header conditions (names case-insensitive; WarpDrive `header`, Loom `headers`).
    public var headers: [FieldCondition]
    /// Query parameter conditions (names and values compared after percent-decoding).
    public var query: [FieldCondition]

    public init(
        path: PathMatch? = nil, host: String? = nil, methods: [String]? = nil, headers: [FieldCondition] = [],
        query: [FieldCondition] = []
    ) {
        self.path = path
        self.host = host
        self.methods = methods
        self.headers = headers
        self.query = query
    }
}

extension RouteMatch {
    /// `host` as the routers compare it: lower-cased, without a trailing dot (`Example.COM.`
    /// → `example.com`; `*.` prefixes stay).
    public var hostRule: String? {
        host.map { ($0.utf8.last == UInt8(ascii: ".") ? String($0.dropLast()) : $0).lowercased() }
    }
}

extension RouteConfig {
    /// The path's `{name}` parameters in capture order (none for other path rules).
    public var parameterNames: [String] {
        match.path?.segmentPattern?.parameterNames ?? []
    }
}

/// A condition on a request header or a query parameter, by name. With several fields or
/// parameters of that name, one satisfying the test is enough (`absent`: none may exist).
public struct FieldCondition: Sendable, Hashable {
    public enum Test: Sendable, Hashable {
        /// A value equals this exactly (case-sensitive; header values without surrounding spaces).
        case equals(String)
        /// Present, with any value (also empty).
        case present
        /// Not present at all.
        case absent
        /// A value matches this regular expression as a whole.
        case matches(String)
    }

    public var name: String
    public var test: Test

    public init(name: String, test: Test) {
        self.name = name
        self.test = test
    }
}

/// How a route matches the request path (case-sensitive, query excluded).
public enum PathMatch: Sendable, Equatable {
    /// The whole path equals this (Loom `/api`, WarpDrive `path_exact`).
    case exact(String)
    /// The path is this prefix or continues it at a `/` boundary (Loom `/api/*`, WarpDrive
    /// `path_prefix`). `/api` matches `/api` and `/api/users`, never `/apis`; `/` matches all.
    case prefix(String)
    /// A regular expression matched from the start of the path (as if it began with `^`;
    /// end it with `$` to match whole paths) (WarpDrive `path_regex`).
    case regex(String)
    /// Segments with `{param}` parameters, optionally ending in `/*` (Loom `/users/{id}`,
    /// `/users/{id}/*`).
    case pattern(PathPattern)
}

/// A route's change to the path it forwards (the query is always forwarded as sent).
public enum PathRewrite: Sendable, Equatable {
    /// Replace the matched prefix with this (`path_prefix = "/old-api"`, `rewrite = "/new-api"`:
    /// `/old-api/users` → `/new-api/users`), where `{name}` is a path parameter. Needs a prefix path.
    case prefix(String)
    /// Replace the first match of `pattern` in the path with `replacement`, where `$1`…`$9`
    /// and `{name}` stand for capture groups, or else path parameters (not `${name}`, which is
    /// an environment variable).
    case regex(pattern: String, replacement: String)
}

/// What a matching route does.
public enum RouteAction: Sendable, Equatable {
    /// Forward to the named upstream.
    case proxy(upstream: String)
    /// Answer directly, like nginx `return` or Caddy `respond`.
    case respond(StaticResponse)
    /// Answer with a redirect.
    case redirect(RouteRedirect)
    /// Serve files from a directory (`static`).
    case files(StaticFiles)
}

/// `static: {root, index}`: a route that serves files from `root` (the request path, after
/// the route's prefix when `strip_prefix` is set, names the file), with `index` files for
/// directories.
public struct StaticFiles: Sendable, Equatable {
    /// An absolute directory (relative paths in the file are resolved when loading).
    public var root: String
    /// Files tried, in order, for a directory's path (ending in `/`).
    public var index: [String]

    public init(root: String, index: [String] = ["index.html"]) {
        self.root = root
        self.index = index
    }
}

/// `x_sendfile` (WarpDrive `middleware.x_sendfile_enabled`): an upstream answering with
/// `X-Sendfile: /path` (or `X-Accel-Redirect: /uri` under a mapped prefix) has loom serve that
/// file instead of the upstream's body, confined to `roots`.
public struct XSendfileSettings: Sendable, Equatable {
    public var enabled: Bool
    /// Absolute directories an `X-Sendfile` path must lie in.
    public var roots: [String]
    /// `X-Accel-Redirect` URI prefixes and the directories they map to.
    public var accelMappings: [AccelMapping]

    public struct AccelMapping: Sendable, Equatable {
        public var prefix: String
        public var directory: String

        public init(prefix: String, directory: String) {
            self.prefix = prefix
            self.directory = directory
        }
    }

    public init(enabled: Bool = false, roots: [String] = [], accelMappings: [AccelMapping] = []) {
        self.enabled = enabled
        self.roots = roots
        self.accelMappings = accelMappings
    }
}

/// A redirect a route answers with: `Location` is `location` with each `{name}` replaced by
/// that path parameter, and the request's query appended (after `&` when `location` has one).
public struct RouteRedirect: Sendable, Equatable {
    public static let statuses: Set<Int> = [301, 302, 303, 307, 308]

    public var location: String
    /// 301 (the default), 302, 303, 307 or 308.
    public var status: Int

    public init(location: String, status: Int = 301) {
        self.location = location
        self.status = status
    }

    /// The `{name}` placeholders of `location`, in order; nil when a `{` has no `}`.
    public static func placeholders(_ location: String) -> [String]? {
        var names: [String] = []
        var rest = Substring(location)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { return nil }
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
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

/// Header changes a route makes to one direction of the exchange, applied in this order:
/// fields named in `remove` or `set` are dropped from what was received, then `set` and `add`
/// are appended. Names compare case-insensitively.
public struct HeaderRules: Sendable, Equatable {
    public var add: [HeaderPair]
    /// Replace every field of the name with this one (or add it when absent).
    public var set: [HeaderPair]
    public var remove: [String]

    public init(add: [HeaderPair] = [], set: [HeaderPair] = [], remove: [String] = []) {
        self.add = add
        self.set = set
        self.remove = remove
    }

    public var isEmpty: Bool { add.isEmpty && set.isEmpty && remove.isEmpty }
}

/// An ordered name/value pair (headers, environment entries).
public struct HeaderPair: Sendable, Hashable {
    public var name: String
    public var value: String

    /// Fields Loom writes itself (framing, connection management, `Host`, `Date`), lower-cased:
    /// a value from configuration or a plugin would duplicate or contradict Loom's own.
    public static let managedNames: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
        "te", "trailer", "upgrade", "expect", "date",
    ]

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Whether this field's name is `lowered` (a lower-cased name), ignoring ASCII case, with
    /// no string allocated (filters compare names on every request).
    public func hasName(_ lowered: String) -> Bool {
        Self.namesEqual(name, lowered)
    }

    /// `name` lower-cased, allocating only when it has upper-case letters.
    public static func lowered(_ name: String) -> String {
        name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? name.lowercased() : name
    }

    /// `name` equals `lowered` ignoring ASCII case; `lowered` is lower-case already.
    public static func namesEqual<A: StringProtocol, B: StringProtocol>(_ name: A, _ lowered: B) -> Bool {
        guard name.utf8.count == lowered.utf8.count else { return false }
        for (a, b) in zip(name.utf8, lowered.utf8) where a != b {
            guard a >= UInt8(ascii: "A"), a <= UInt8(ascii: "Z"), a | 0x20 == b else { return false }
        }
        return true
    }

    /// Whether `text` is an RFC 9110 token (§5.6.2): what field names and methods must be.
    public static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { c in
            c.isASCII && (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(c))
        }
    }
}
