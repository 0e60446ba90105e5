import LoomConfig

/// `security_headers`: adds browser-hardening response fields (HSTS, `nosniff`, frame
/// options, referrer policy, a CSP) to every response that does not already carry them, so
/// an application's own policy (its CSP above all) passes through untouched.
public struct SecurityHeadersFilter: HTTPFilter {
    public let name = "security_headers"
    /// The fields to add, decided once from the settings.
    let fields: [HeaderPair]

    static let factory: FilterRegistry.Factory = { settings in
        guard case .securityHeaders(let config) = settings else { return nil }
        return SecurityHeadersFilter(config)
    }

    public init(_ settings: SecurityHeadersSettings) {
        var fields: [HeaderPair] = []
        if let hsts = settings.hsts {
            var value = "max-age=\(hsts.maxAge.components.seconds)"
            if hsts.includeSubdomains { value += "; includeSubDomains" }
            if hsts.preload { value += "; preload" }
            fields.append(HeaderPair(name: "Strict-Transport-Security", value: value))
        }
        if settings.contentTypeOptions { fields.append(HeaderPair(name: "X-Content-Type-Options", value: "nosniff")) }
        if let frame = settings.frameOptions { fields.append(HeaderPair(name: "X-Frame-Options", value: frame)) }
        if let referrer = settings.referrerPolicy { fields.append(HeaderPair(name: "Referrer-Policy", value: referrer)) }
        if let csp = settings.contentSecurityPolicy { fields.append(HeaderPair(name: "Content-Security-Policy", value: csp)) }
        self.fields = fields
    }

    public func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
        for field in fields { response.setDefault(field.name, field.value) }
    }
}
