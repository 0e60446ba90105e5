/// The standard methods (RFC 9110 §9 and PATCH) as bits, so a route's method list is checked
/// with one AND instead of string comparisons; other methods fall back to comparing strings.
enum KnownMethod {
    static let names = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
    /// Set in a route's mask when it lists a method outside `names`.
    static let other: UInt16 = 1 << 15
    /// A route without a method list allows everything.
    static let any: UInt16 = .max

    /// The method's bit, or 0 for a method outside `names`.
    static func bit(_ method: String) -> UInt16 {
        // GET first: most requests are GETs, and one comparison settles them.
        if method == "GET" { return 1 }
        guard let index = names.firstIndex(of: method) else { return 0 }
        return 1 << UInt16(index)
    }

    /// The mask for a route's method list (nil: any method).
    static func mask(_ methods: [String]?) -> UInt16 {
        guard let methods else { return any }
        return methods.reduce(0) { mask, method in mask | (bit(method) == 0 ? other : bit(method)) }
    }
}
