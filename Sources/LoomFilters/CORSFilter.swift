import Foundation

import LoomConfig

/// `cors` (and Loom's top-level `cors:` section): cross-origin resource sharing as the Fetch
/// standard defines it.
///
/// - A request without `Origin` is not a CORS request: untouched.
/// - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
///   here with 204 when the origin, the method and every requested header are allowed, and
///   refused with 403 otherwise; it never reaches the upstream. Any other `OPTIONS` is
///   proxied like any request.
/// - An actual request from an allowed origin is proxied, and its response gets
///   `Access-Control-Allow-Origin` (the origin itself, or `*` when every origin is allowed
///   and credentials are not), `-Allow-Credentials`, `-Expose-Headers`, and `Vary: Origin`
///   when the answer depends on the origin. A disallowed origin gets no CORS fields, so
///   the browser keeps the response from the page.
///
/// Origins are exact (`https://app.example.com`), `*`, or a subdomain pattern
/// (`https://*.example.com`: any subdomain, not the bare domain). The CORS-safelisted
/// methods (GET, HEAD, POST) are always allowed; `allow_headers: ["*"]` allows any header.
/// Requested headers are echoed back by name, which browsers honour with credentials too.
public struct CORSFilter: HTTPFilter {
    public let name = "cors"
    let anyOrigin: Bool
    let origins: Set<String>
    /// `https://*.example.com` as (`https://`, `.example.com`, `:8443` or "").
    let patterns: [(scheme: String, suffix: String, port: String)]
    let methods: Set<String>
    let methodList: String
    let anyHeader: Bool
    let headers: Set<String>
    let exposeHeaders: String?
    let maxAge: String?
    let credentials: Bool

    static let factory: FilterRegistry.Factory = { settings in
        guard case .cors(let config) = settings else { return nil }
        return CORSFilter(config)
    }

    static let safelistedMethods = ["GET", "HEAD", "POST"]
    static let refusal = FilterRejection(status: 403, code: "cors_rejected", message: "cross-origin request not allowed")

    public init(_ settings: CORSSettings) {
        let origins = settings.allowOrigins ?? ["*"]
        anyOrigin = origins.contains("*")
        var exact: Set<String> = []
        var patterns: [(String, String, String)] = []
        for origin in origins where origin != "*" {
            guard let star = origin.range(of: "://*.") else {
                exact.insert(origin)
                continue
            }
            let scheme = String(origin[..<star.lowerBound]) + "://"
            var rest = origin[origin.index(before: star.upperBound)...]  // ".example.com[:port]"
            var port = ""
            if let colon = rest.lastIndex(of: ":") {
                port = String(rest[colon...])
                rest = rest[..<colon]
            }
            patterns.append((scheme, String(rest), port))
        }
        self.origins = exact
        self.patterns = patterns
        let methods = settings.allowMethods ?? Self.safelistedMethods
        self.methods = Set(methods + Self.safelistedMethods)
        methodList = methods.joined(separator: ", ")
        let headers = settings.allowHeaders ?? []
        anyHeader = headers.contains("*")
        self.headers = Set(headers.map { $0.lowercased() })
        exposeHeaders = settings.exposeHeaders.flatMap { $0.isEmpty ? nil : $0.joined(separator: ", ") }
        maxAge = settings.maxAge.map { String($0.components.seconds) }
        credentials = settings.allowCredentials ?? false
    }

    func allows(origin: String) -> Bool {
        if anyOrigin || origins.contains(origin) { return true }
        return patterns.contains { pattern in
            guard origin.hasPrefix(pattern.scheme), origin.hasSuffix(pattern.suffix + pattern.port) else { return false }
            // At least one label before the suffix, and nothing else in between.
            let host = origin.dropFirst(pattern.scheme.count).dropLast(pattern.suffix.count + pattern.port.count)
            return !host.isEmpty && !host.contains(":") && !host.contains("/")
        }
    }

    /// `Access-Control-Allow-Origin` for an allowed `origin`.
    func allowOriginValue(_ origin: String) -> String {
        anyOrigin && !credentials ? "*" : origin
    }

    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        guard request.head.method == "OPTIONS", let origin = request.header("origin"),
            let method = request.header("access-control-request-method")
        else { return .continue }
        let requested = (request.header("access-control-request-headers") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // Requested names are echoed back, so only field-name tokens pass.
        guard allows(origin: origin), methods.contains(method), requested.allSatisfy(HeaderPair.isToken),
            anyHeader || requested.allSatisfy({ headers.contains($0.lowercased()) })
        else { return .reject(Self.refusal) }
        var fields = [HeaderPair(name: "Access-Control-Allow-Origin", value: allowOriginValue(origin))]
        fields.append(HeaderPair(name: "Access-Control-Allow-Methods", value: methodList))
        if !requested.isEmpty { fields.append(HeaderPair(name: "Access-Control-Allow-Headers", value: requested.joined(separator: ", "))) }
        if credentials { fields.append(HeaderPair(name: "Access-Control-Allow-Credentials", value: "true")) }
        if let maxAge { fields.append(HeaderPair(name: "Access-Control-Max-Age", value: maxAge)) }
        fields.append(HeaderPair(name: "Vary", value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"))
        return .respond(LocalResponse(status: 204, headers: fields))
    }

    public func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
        // Whenever the answer depends on the origin, every response says so (with or without
        // an Origin, allowed or not), so a shared cache never serves one origin's to another.
        if !(anyOrigin && !credentials) { response.changes.add("Vary", "Origin") }
        guard let origin = request.header("origin"), allows(origin: origin) else { return }
        response.changes.set("Access-Control-Allow-Origin", allowOriginValue(origin))
        if credentials { response.changes.set("Access-Control-Allow-Credentials", "true") }
        if let exposeHeaders { response.changes.set("Access-Control-Expose-Headers", exposeHeaders) }
    }
}
