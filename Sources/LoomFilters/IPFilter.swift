import LoomConfig

/// `ip_filter`: refuses clients by address with 403. A client in a `deny` block is refused;
/// when `allow` lists blocks, a client in none of them is refused too. The client is the
/// one `FilterRequest.clientIP` names (trusted proxies see through `X-Forwarded-For`); a
/// request whose client address is unknown is refused whenever `allow` is set.
public struct IPFilter: HTTPFilter {
    public let name = "ip_filter"
    let settings: IPFilterSettings

    static let factory: FilterRegistry.Factory = { settings in
        guard case .ipFilter(let config) = settings else { return nil }
        return IPFilter(config)
    }

    public init(_ settings: IPFilterSettings) {
        self.settings = settings
    }

    static let refusal = FilterRejection(status: 403, code: "forbidden", message: "client address not allowed")

    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        guard let bytes = request.clientIP.flatMap(AddressBlock.addressBytes) else {
            return settings.allow.isEmpty ? .continue : .reject(Self.refusal)
        }
        if settings.deny.contains(where: { $0.contains(bytes) }) { return .reject(Self.refusal) }
        if !settings.allow.isEmpty && !settings.allow.contains(where: { $0.contains(bytes) }) { return .reject(Self.refusal) }
        return .continue
    }
}
