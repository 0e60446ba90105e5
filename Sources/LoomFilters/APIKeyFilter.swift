import LoomConfig

/// `api_key` (and WarpDrive's `require_auth`, the admin token in `X-Admin-Token`): a request
/// must carry one of the configured keys in the header (or, when configured, the query
/// parameter), else 401 (`unauthorized`, with `WWW-Authenticate` naming the header, as RFC
/// 9110 §15.5.2 asks of a 401). Keys are compared in constant time, every key every time, so
/// timing says nothing about how much of a guess was right. The key is not forwarded
/// upstream, and a query key is not logged either.
public struct APIKeyFilter: HTTPFilter {
    public let name = "api_key"
    let keys: [[UInt8]]
    let header: String
    let query: String?
    let refusal: FilterRejection

    static let factory: FilterRegistry.Factory = { settings in
        guard case .apiKey(let config) = settings else { return nil }
        return APIKeyFilter(config)
    }

    public init(_ settings: APIKeySettings) {
        keys = settings.keys.map { Array($0.utf8) }
        header = settings.header
        query = settings.query
        refusal = FilterRejection(
            status: 401, code: "unauthorized", message: "missing or invalid credentials",
            headers: [HeaderPair(name: "WWW-Authenticate", value: "APIKey header=\"\(settings.header)\"")])
    }

    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        guard request.fieldCount(header.lowercased()) <= 1 else { return .reject(.repeatedCredentials(header)) }
        let presented = request.header(header) ?? query.flatMap(request.queryParameter)
        // Neither copy goes on, whichever was checked.
        request.upstreamChanges.remove(header)
        if let query { request.removeQueryParameter(query) }
        guard let presented else { return .reject(refusal) }
        let bytes = Array(presented.utf8)
        var matched = false
        for key in keys { matched = Self.constantTimeEquals(bytes, key) || matched }
        return matched ? .continue : .reject(refusal)
    }

    /// Equality whose time depends only on the lengths, not on where the bytes differ.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }
}
