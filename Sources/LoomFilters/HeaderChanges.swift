import LoomConfig

/// Field changes filters ask for on one head: set (replace every field of the name), add,
/// remove. Applied by loom as it writes the head, in the same pass as the route's header
/// rules (`HeaderRules` semantics: removed and set names are dropped from what was received,
/// then set fields, then added ones).
public struct HeaderChanges: Sendable, Equatable {
    public private(set) var rules = HeaderRules()

    public init() {}

    /// Changes that are exactly `rules` (a route's own, say).
    public init(_ rules: HeaderRules) {
        self.rules = rules
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// The first value of a field (lower-cased `name`) once these changes apply to a head
    /// whose own first value is `received`.
    public func value(_ lowered: String, received: String?) -> String? {
        if let set = rules.set.last(where: { $0.hasName(lowered) }) { return set.value }
        let added = rules.add.first { $0.hasName(lowered) }?.value
        if rules.remove.contains(where: { HeaderPair.namesEqual($0, lowered) }) { return added }
        return received ?? added
    }

    public mutating func set(_ name: String, _ value: String) {
        forget(name)
        rules.set.append(HeaderPair(name: name, value: value))
    }

    public mutating func add(_ name: String, _ value: String) {
        rules.add.append(HeaderPair(name: name, value: value))
    }

    public mutating func remove(_ name: String) {
        forget(name)
        rules.remove.append(name)
    }

    /// Earlier changes to `name` give way to a later set or remove.
    private mutating func forget(_ name: String) {
        let lowered = HeaderPair.lowered(name)
        rules.set.removeAll { $0.hasName(lowered) }
        rules.add.removeAll { $0.hasName(lowered) }
    }

    /// `base` (a route's rules) followed by these changes: a name these set or remove drops
    /// the route's own entries for it, so a filter's decision is never doubled.
    public func applied(to base: HeaderRules) -> HeaderRules {
        // Most routes have no rules of their own: nothing to merge.
        if base.isEmpty { return rules }
        let overridden = Set((rules.set.map(\.name) + rules.remove).map { $0.lowercased() })
        func kept(_ pairs: [HeaderPair]) -> [HeaderPair] { pairs.filter { !overridden.contains($0.name.lowercased()) } }
        return HeaderRules(add: kept(base.add) + rules.add, set: kept(base.set) + rules.set, remove: base.remove + rules.remove)
    }
}
