/// A dialect-neutral tree of configuration values with source positions.
///
/// Both readers first turn their parser's output (Yams nodes, a TOMLKit table) into this tree,
/// so that `${VAR}` expansion, type checks and "unknown key" reporting are written once.
/// Map entries keep file order (TOMLKit sorts keys; the TOML reader restores the order from
/// `TOMLPositionIndex`), which keeps upstreams, headers and diagnostics in the user's order.
struct ConfigNode: Sendable {
    /// One `key: value` pair of a map, with the position of the key itself.
    struct Entry: Sendable {
        var key: String
        var keyLocation: SourceLocation?
        var value: ConfigNode
    }

    enum Value: Sendable {
        case map([Entry])
        case sequence([ConfigNode])
        case scalar(ConfigScalar)
    }

    var value: Value
    /// Where the value starts (for a map or sequence, its first token), when known.
    var location: SourceLocation?

    init(_ value: Value, at location: SourceLocation?) {
        self.value = value
        self.location = location
    }

    /// A human name for the node's type in messages ("a string", "a list", ...).
    func typeName(in dialect: ConfigDialect) -> String {
        switch value {
        case .map: return dialect == .warpDriveTOML ? "a table" : "a mapping"
        case .sequence: return dialect == .warpDriveTOML ? "an array" : "a list"
        case .scalar(let scalar): return scalar.typeName
        }
    }
}

/// A leaf value. `text` is always the user's spelling, so messages can quote it whatever
/// the type, and YAML plain scalars (which are text until a schema says otherwise) can be
/// read as strings.
struct ConfigScalar: Sendable {
    enum Kind: Sendable, Equatable {
        case string
        case integer(Int)
        /// A YAML integer too large for `Int`; reported as out of range when read.
        case hugeInteger
        case float(Double)
        case boolean(Bool)
        case null
        /// TOML dates and times; no key takes them, so they only appear in type errors.
        case dateTime
        /// A value whose problem was already reported (an unset `${VAR}`); readers skip it
        /// silently so that one mistake yields one diagnostic.
        case invalid
    }

    var kind: Kind
    var text: String
    /// The text came from `${VAR}` expansion: it may then be read as a number or boolean,
    /// because environment variables can only carry strings.
    var isExpanded = false
    /// A YAML scalar: any non-null scalar may be read as a string by its text
    /// (`name: 1.0` is the string "1.0").
    var isUntypedText = false

    var typeName: String {
        switch kind {
        case .string: return "a string"
        case .integer, .hugeInteger: return "an integer"
        case .float: return "a number"
        case .boolean: return "a boolean"
        case .null: return "null"
        case .dateTime: return "a date"
        case .invalid: return "an invalid value"
        }
    }
}

/// A document the parser rejected; carries the diagnostic to report (and nothing to decode).
struct ConfigSyntaxError: Error {
    var diagnostic: Diagnostic
}
