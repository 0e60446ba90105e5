import LoomConfig

/// Turns configured filters into running ones: a factory per filter type name, each
/// registered by its own type (no central switch over types).
///
/// The data path builds one `FilterChain` per route and snapshot through a registry;
/// `builtIn` knows every filter this build has. Tests can register replacements.
public struct FilterRegistry: Sendable {
    public typealias Factory = @Sendable (FilterSettings) -> (any HTTPFilter)?

    private var factories: [String: Factory]

    public init(_ factories: [String: Factory] = [:]) {
        self.factories = factories
    }

    public static let builtIn = FilterRegistry([
        "cors": CORSFilter.factory,
        "security_headers": SecurityHeadersFilter.factory,
        "ip_filter": IPFilter.factory,
        "rate_limit": RateLimitFilter.factory,
        "api_key": APIKeyFilter.factory,
        "compression": CompressionFilter.factory,
        "body_limit": BodyLimitFilter.factory,
        "jwt": JWTFilter.factory,
        "basic_auth": BasicAuthFilter.factory,
        "headers": HeadersFilter.factory,
    ])

    /// This registry with `factory` for `type` (added or replacing the built-in one).
    public func registering(_ type: String, _ factory: @escaping Factory) -> FilterRegistry {
        var copy = self
        copy.factories[type] = factory
        return copy
    }

    /// The chain for `configs`, in order. A type without a factory (the config readers and
    /// this registry list the same types, and a test checks it) fails closed: it becomes a
    /// filter that answers 500, never a silently missing check.
    public func chain(_ configs: [FilterConfig]) -> FilterChain {
        FilterChain(filters: configs.map { config in factories[config.type]?(config.settings) ?? UnavailableFilter(name: config.type) })
    }
}

/// Stands in for a configured filter this build cannot create.
struct UnavailableFilter: HTTPFilter {
    let name: String

    struct Missing: Error, CustomStringConvertible {
        let type: String
        var description: String { "no factory for filter type \(type)" }
    }

    func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        throw Missing(type: name)
    }
}
