import LoomConfig

/// A route's `HeaderRules` for one direction, prepared once per snapshot for `HeadWriter`:
/// the names whose received fields are dropped (lower-cased), the fields appended, and which
/// fields Loom would generate that the rules take over.
package final class PreparedHeaderRules: Sendable {
    /// `remove` and `set` names, lower-cased.
    let dropped: [String]
    /// `set`, then `add`.
    let appended: [HeaderPair]
    /// Generated fields (`X-Forwarded-*`, `Forwarded`, `Via`) a rule names: a rule that sets,
    /// adds or removes one replaces what Loom would generate, never doubles it.
    let replaced: HeadWriter.ForwardingFields

    package static let none = PreparedHeaderRules(HeaderRules())

    package init(_ rules: HeaderRules) {
        dropped = (rules.remove + rules.set.map(\.name)).map(HeaderPair.lowered)
        appended = rules.set + rules.add
        replaced = HeadWriter.ForwardingFields(named: rules.add.map(\.name) + rules.set.map(\.name) + rules.remove)
    }
}
