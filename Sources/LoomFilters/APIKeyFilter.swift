import LoomConfig
import LoomRouting

/// `api_key` (and WarpDrive's `require_auth`, the admin token in `X-Admin-Token`): a request
/// must carry one of the configured keys in the header (or query parameter), else 401
/// (`unauthorized`). Keys are compared in constant time, every key every time, so timing
/// says nothing about how much of a guess was right. The key is not forwarded upstream.
public struct APIKeyFilter: HTTPFilter {
    public let name = "api_key"
    let keys: [[UInt8]]
    let header: String?
    let query: String?

    static let factory: FilterRegistry.Factory = { settings in
        guard case .apiKey(let config) = settings else { return nil }
        return APIKeyFilter(config)
    }

    static let refusal = FilterRejection(status: 401, code: "unauthorized", message: "missing or invalid credentials")

    public init(_ settings: APIKeySettings) {
        keys = settings.keys.map { Array($0.utf8) }
        header = settings.header
        query = settings.query
    }

    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        let presented = header.flatMap { request.header($0) } ?? query.flatMap { name in request.head.query.flatMap { QueryString.firstValue(name, in: $0) } }
        guard let presented else { return .reject(Self.refusal) }
        let bytes = Array(presented.utf8)
        var matched = false
        for key in keys { matched = Self.constantTimeEquals(bytes, key) || matched }
        guard matched else { return .reject(Self.refusal) }
        if let header { request.upstreamChanges.remove(header) }
        return .continue
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
