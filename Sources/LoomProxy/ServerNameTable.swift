/// Server names (the DNS names in certificates) to values, matched as TLS clients match a
/// certificate's names (RFC 6125 §6.4): exact names first, then a `*.` wildcard covering
/// exactly one label (`*.example.com` matches `a.example.com`, not `example.com` nor
/// `a.b.example.com`). Case-insensitive, a trailing dot ignored; the first entry that
/// names a name keeps it.
struct ServerNameTable<Value: Sendable>: Sendable {
    private var exact: [String: Value] = [:]
    /// Keyed by what follows `*.`.
    private var wildcards: [String: Value] = [:]

    init(_ entries: [(names: [String], value: Value)]) {
        for (names, value) in entries {
            for name in names.map(Self.normalized) {
                if name.hasPrefix("*.") {
                    let suffix = String(name.dropFirst(2))
                    if !suffix.isEmpty, wildcards[suffix] == nil { wildcards[suffix] = value }
                } else if !name.isEmpty, exact[name] == nil {
                    exact[name] = value
                }
            }
        }
    }

    func match(_ serverName: String) -> Value? {
        let name = Self.normalized(serverName)
        if let value = exact[name] { return value }
        guard let dot = name.firstIndex(of: "."), dot != name.startIndex else { return nil }
        return wildcards[String(name[name.index(after: dot)...])]
    }

    private static func normalized(_ name: String) -> String {
        let lowered = name.lowercased()
        return lowered.hasSuffix(".") ? String(lowered.dropLast()) : lowered
    }
}
