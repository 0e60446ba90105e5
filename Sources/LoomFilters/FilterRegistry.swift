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
    ])

    /// This registry with `factory` for `type` (added or replacing the built-in one).
    public func registering(_ type: String, _ factory: @escaping Factory) -> FilterRegistry {
        var copy = self
        copy.factories[type] = factory
        return copy
    }

    /// The chain for `configs`, in order. A type without a factory is a programming error
    /// (the config readers and this registry list the same types): it is skipped and named
    /// in `missing`, which the caller reports.
    public func chain(_ configs: [FilterConfig]) -> (chain: FilterChain, missing: [String]) {
        var filters: [any HTTPFilter] = []
        var missing: [String] = []
        for config in configs {
            if let filter = factories[config.type]?(config.settings) {
                filters.append(filter)
            } else {
                missing.append(config.type)
            }
        }
        return (FilterChain(filters: filters), missing)
    }
}
