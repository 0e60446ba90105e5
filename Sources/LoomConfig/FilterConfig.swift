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

    public var typeName: String {
        switch self {
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
