/// One entry of a `filters` list, global or per route: a filter type and its typed settings.
///
/// Each type's settings are read by its own reader (`ConfigReader.filterReaders`, by type
/// name) and turned into a running filter by its own factory (`FilterRegistry` in
/// LoomFilters), so adding a filter touches neither a central switch nor the other types.
public struct FilterConfig: Sendable, Equatable {
    public var settings: FilterSettings

    public init(_ settings: FilterSettings) {
        self.settings = settings
    }

    /// The configured type name (`cors`, `ip_filter`, `security_headers`).
    public var type: String { settings.typeName }

    /// Every type name a `filters` entry may have, sorted.
    public static var knownTypes: [String] { ConfigReader.filterReaders.keys.sorted() }
}

/// The typed settings of each built-in filter type.
public enum FilterSettings: Sendable, Equatable {
    case cors(CORSSettings)
    case securityHeaders(SecurityHeadersSettings)
    case ipFilter(IPFilterSettings)
    case rateLimit(RateLimitSettings)
    case apiKey(APIKeySettings)
    case compression(CompressionSettings)
    case bodyLimit(BodyLimitSettings)
    case jwt(JWTSettings)
    case basicAuth(BasicAuthSettings)
    case headers(HeaderFilterSettings)

    public var typeName: String {
        switch self {
        case .compression: "compression"
        case .bodyLimit: "body_limit"
        case .jwt: "jwt"
        case .basicAuth: "basic_auth"
        case .headers: "headers"
        case .apiKey: "api_key"
        case .rateLimit: "rate_limit"
        case .cors: "cors"
        case .securityHeaders: "security_headers"
        case .ipFilter: "ip_filter"
        }
    }
}

/// `security_headers`: response fields that harden browsers, each set only when the
/// response does not carry it already (an application's own policy wins, CSP included).
public struct SecurityHeadersSettings: Sendable, Equatable {
    /// `Strict-Transport-Security` (nil: not sent).
    public var hsts: HSTS?
    /// `X-Content-Type-Options: nosniff`.
    public var contentTypeOptions: Bool
    /// `X-Frame-Options` value (`DENY`, `SAMEORIGIN`), nil: not sent.
    public var frameOptions: String?
    /// `Referrer-Policy` value, nil: not sent.
    public var referrerPolicy: String?
    /// `Content-Security-Policy` value, nil: not sent.
    public var contentSecurityPolicy: String?

    public struct HSTS: Sendable, Equatable {
        public var maxAge: Duration
        public var includeSubdomains: Bool
        public var preload: Bool

        public init(maxAge: Duration = .seconds(31_536_000), includeSubdomains: Bool = false, preload: Bool = false) {
            self.maxAge = maxAge
            self.includeSubdomains = includeSubdomains
            self.preload = preload
        }
    }

    public init(hsts: HSTS? = nil, contentTypeOptions: Bool = true, frameOptions: String? = "DENY", referrerPolicy: String? = "strict-origin-when-cross-origin",
                contentSecurityPolicy: String? = nil) {
        self.hsts = hsts
        self.contentTypeOptions = contentTypeOptions
        self.frameOptions = frameOptions
        self.referrerPolicy = referrerPolicy
        self.contentSecurityPolicy = contentSecurityPolicy
    }
}

/// `ip_filter`: client addresses allowed or refused (403). A client in `deny` is refused; with
/// a non-empty `allow`, a client outside it is refused too.
public struct IPFilterSettings: Sendable, Equatable {
    public var allow: [AddressBlock]
    public var deny: [AddressBlock]

    public init(allow: [AddressBlock] = [], deny: [AddressBlock] = []) {
        self.allow = allow
        self.deny = deny
    }
}

/// CORS settings: the top-level `cors:` section, or a `cors` filter.
public struct CORSSettings: Sendable, Equatable {
    public var enabled: Bool?
    public var allowOrigins: [String]?
    /// Method tokens, as written.
    public var allowMethods: [String]?
    /// Header names (tokens, `*` allowed).
    public var allowHeaders: [String]?
    public var exposeHeaders: [String]?
    public var maxAge: Duration?
    public var allowCredentials: Bool?

    public init(enabled: Bool? = nil, allowOrigins: [String]? = nil, allowMethods: [String]? = nil, allowHeaders: [String]? = nil,
                exposeHeaders: [String]? = nil, maxAge: Duration? = nil, allowCredentials: Bool? = nil) {
        self.enabled = enabled
        self.allowOrigins = allowOrigins
        self.allowMethods = allowMethods
        self.allowHeaders = allowHeaders
        self.exposeHeaders = exposeHeaders
        self.maxAge = maxAge
        self.allowCredentials = allowCredentials
    }

    /// `*`, or `scheme://host[:port]` with a lower-case host that may start with `*.`
    /// (any subdomain), as browsers send `Origin` (no path, no trailing slash).
    public static func isValidOrigin(_ origin: String) -> Bool {
        if origin == "*" { return true }
        guard let schemeEnd = origin.range(of: "://") else { return false }
        let scheme = origin[..<schemeEnd.lowerBound]
        var host = origin[schemeEnd.upperBound...]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return false }
        if let colon = host.lastIndex(of: ":"), !host.hasPrefix("[") || host[..<colon].hasSuffix("]") {
            guard let port = Int(host[host.index(after: colon)...]), (1...65535).contains(port) else { return false }
            host = host[..<colon]
        }
        if host.hasPrefix("*.") { host = host.dropFirst(2) }
        return !host.isEmpty && host.allSatisfy { ($0.isLetter && $0.isLowercase) || $0.isNumber || "-.[]:".contains($0) }
    }
}

/// `rate_limit` (a filter, or Loom's top-level `rate_limit:` section): token buckets by key,
/// `rate` requests per second with bursts of `burst`; over it, 429 with `Retry-After`.
public struct RateLimitSettings: Sendable, Equatable {
    /// What requests are counted by.
    public enum Key: Sendable, Equatable {
        /// `client_ip`: the client address (trusted proxies see through `X-Forwarded-For`).
        case clientIP
        /// `header:NAME`: the value of this request header (an API key, say).
        case header(String)
        /// `query:NAME`: the value of this query parameter.
        case query(String)
        /// `route`: one bucket for the whole route.
        case route
    }

    /// Where the counters live (`store.type`).
    public enum Store: Sendable, Equatable {
        case memory
        /// `store.redis.address`, `host:port`: planned.
        case redis(host: String, port: Int)
    }

    /// `false` turns the top-level section off.
    public var enabled: Bool?
    /// Requests per second, greater than 0 (required).
    public var rate: Double?
    /// Requests allowed at once above the rate, at least 1; default: the rate rounded up.
    public var burst: Int?
    public var key: Key?
    public var store: Store?
    /// Keys remembered at once (memory bound); the least recently used go first.
    public var maxKeys: Int?

    public init(enabled: Bool? = nil, rate: Double? = nil, burst: Int? = nil, key: Key? = nil, store: Store? = nil, maxKeys: Int? = nil) {
        self.enabled = enabled
        self.rate = rate
        self.burst = burst
        self.key = key
        self.store = store
        self.maxKeys = maxKeys
    }

    /// The burst in effect.
    public var effectiveBurst: Int { burst ?? max(1, Int(min((rate ?? 1).rounded(.up), Double(Self.bursts.upperBound)))) }

    /// Allowed `rate` values: a thousandth of a request per second up to a million.
    public static let rates = 0.001...1_000_000.0
    /// Allowed `burst` values.
    public static let bursts = 1...1_000_000_000

    /// The key limit in effect.
    public static let defaultMaxKeys = 100_000
}

/// `api_key` (and WarpDrive's `require_auth`): requests must carry one of `keys` in the
/// header `header` (or the query parameter `query`, when set), else 401. No keys: nothing
/// passes.
public struct APIKeySettings: Sendable, Equatable {
    public var keys: [String]
    /// The request header carrying the key.
    public var header: String
    /// A query parameter that may carry the key instead (for clients that cannot set
    /// headers); removed from the request sent upstream and from the access log.
    public var query: String?

    public init(keys: [String], header: String = "X-API-Key", query: String? = nil) {
        self.keys = keys
        self.header = header
        self.query = query
    }

    /// WarpDrive's `require_auth`: the admin token in `X-Admin-Token` (no token: no key, so
    /// every request is refused).
    public static func adminToken(_ token: String?) -> APIKeySettings {
        APIKeySettings(keys: token.map { [$0] } ?? [], header: "X-Admin-Token")
    }
}

/// `compression` (and WarpDrive's `gzip_compression_enabled`): response bodies compressed
/// with the best coding the client accepts (`Accept-Encoding`, q-values), for the listed
/// content types, never twice (a response with a `Content-Encoding` passes as it is).
public struct CompressionSettings: Sendable, Equatable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case gzip
        /// HTTP's `deflate`: the zlib format (RFC 9110 §8.4.1.2).
        case deflate
    }

    /// The codings offered, in order of preference when the client weighs them equally.
    public var algorithms: [Algorithm]
    /// Responses whose `Content-Length` is below this go uncompressed (not worth it).
    public var minSize: Int
    /// Media types compressed (`text/html`, or a whole type: `text/*`), lower-cased.
    public var contentTypes: [String]
    /// zlib's level: 1 (fastest) to 9 (smallest).
    public var level: Int

    public static let defaultContentTypes = [
        "text/html", "text/plain", "text/css", "text/xml", "text/javascript", "text/csv", "application/javascript",
        "application/json", "application/xml", "application/problem+json", "application/x-ndjson", "image/svg+xml",
    ]

    public init(algorithms: [Algorithm] = [.gzip, .deflate], minSize: Int = 256, contentTypes: [String] = defaultContentTypes, level: Int = 5) {
        self.algorithms = algorithms
        self.minSize = minSize
        self.contentTypes = contentTypes
        self.level = level
    }
}

/// `body_limit`: request bodies above `maxSize` bytes are refused with 413.
public struct BodyLimitSettings: Sendable, Equatable {
    public var maxSize: Int

    public init(maxSize: Int) {
        self.maxSize = maxSize
    }
}

/// `headers`: the route header rules (`add_headers`, `set_headers`, `remove_headers` and the
/// `_response_` three) as a filter, so they can apply to every route from the global list.
public struct HeaderFilterSettings: Sendable, Equatable {
    public var request: HeaderRules
    public var response: HeaderRules

    public init(request: HeaderRules = HeaderRules(), response: HeaderRules = HeaderRules()) {
        self.request = request
        self.response = response
    }
}
