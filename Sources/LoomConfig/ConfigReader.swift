import Foundation

/// The decoding context shared by both dialect decoders: typed accessors over `ConfigNode`
/// that record a diagnostic (with key path and position) instead of failing, and fill the
/// `ConfigSourceMap` as they go.
///
/// Every accessor returns nil when the value is missing or wrong, after reporting the
/// latter, so a decoder reads as a list of `if let` assignments over defaults and never
/// stops at the first problem.
struct ConfigReader {
    let dialect: ConfigDialect
    var diagnostics: [Diagnostic] = []
    var sourceMap: ConfigSourceMap

    init(dialect: ConfigDialect, file: String) {
        self.dialect = dialect
        self.sourceMap = ConfigSourceMap(file: file)
    }

    var file: String { sourceMap.file }

    mutating func report(_ path: String, at location: SourceLocation?, _ message: String) {
        report(.error, path, at: location, message)
    }

    mutating func report(_ severity: Diagnostic.Severity, _ path: String, at location: SourceLocation?, _ message: String) {
        diagnostics.append(Diagnostic(severity, at: location ?? SourceLocation(file: file), path: path, message))
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    // MARK: - Maps and lists

    /// The entries of a map, after reporting keys not in `allowed` (with suggestions).
    /// YAML null (`server:` with nothing under it) reads as an empty map.
    mutating func table(_ node: ConfigNode, at path: String, allowed: [String]) -> ConfigTable? {
        let entries: [ConfigNode.Entry]
        switch node.value {
        case .map(let list):
            entries = list
        case .scalar(let scalar) where scalar.kind == .null:
            entries = []
        case .scalar(let scalar) where scalar.kind == .invalid:
            return nil
        default:
            report(path, at: node.location, "expected \(mapName), got \(describe(node))")
            return nil
        }
        var kept: [ConfigNode.Entry] = []
        for entry in entries {
            let childPath = Self.join(path, entry.key)
            sourceMap.locations[childPath] = entry.keyLocation ?? entry.value.location
            if allowed.contains(entry.key) {
                kept.append(entry)
            } else {
                report(childPath, at: entry.keyLocation ?? entry.value.location,
                       "unknown key \"\(entry.key)\"" + Spelling.didYouMean(entry.key, among: allowed))
            }
        }
        return ConfigTable(path: path, location: node.location, entries: kept)
    }

    /// The elements of a list with their paths; each element's location is recorded.
    mutating func list(_ node: ConfigNode, at path: String) -> [(path: String, node: ConfigNode)]? {
        switch node.value {
        case .sequence(let elements):
            return elements.enumerated().map { i, element in
                let elementPath = "\(path)[\(i)]"
                sourceMap.locations[elementPath] = element.location
                return (elementPath, element)
            }
        case .scalar(let scalar) where scalar.kind == .invalid:
            return nil
        default:
            report(path, at: node.location, "expected \(listName), got \(describe(node))")
            return nil
        }
    }

    var mapName: String { dialect == .warpDriveTOML ? "a table" : "a mapping" }
    var listName: String { dialect == .warpDriveTOML ? "an array" : "a list" }

    /// `"abc"` for string-like scalars (so the user sees their value), else the type name.
    func describe(_ node: ConfigNode) -> String {
        if case .scalar(let scalar) = node.value, scalar.kind == .string {
            return "\"\(scalar.text)\""
        }
        return node.typeName(in: dialect)
    }

    // MARK: - Scalars

    /// The scalar of a node, or nil after reporting; `.invalid` scalars are skipped silently.
    private mutating func scalar(_ node: ConfigNode, _ path: String, expected: String) -> ConfigScalar? {
        guard case .scalar(let scalar) = node.value else {
            report(path, at: node.location, "expected \(expected), got \(describe(node))")
            return nil
        }
        return scalar.kind == .invalid ? nil : scalar
    }

    mutating func string(_ node: ConfigNode, _ path: String) -> String? {
        guard let scalar = scalar(node, path, expected: "a string") else { return nil }
        switch scalar.kind {
        case .string: return scalar.text
        case .integer, .hugeInteger, .float, .boolean, .dateTime:
            if scalar.isUntypedText { return scalar.text }
        default:
            break
        }
        report(path, at: node.location, "expected a string, got \(describe(node))")
        return nil
    }

    /// An integer, optionally range-checked. Strings are accepted only when they came from
    /// `${VAR}` expansion.
    mutating func int(_ node: ConfigNode, _ path: String, in range: ClosedRange<Int>? = nil) -> Int? {
        guard let scalar = scalar(node, path, expected: "an integer") else { return nil }
        let value: Int
        switch scalar.kind {
        case .integer(let number):
            value = number
        case .string where scalar.isExpanded:
            guard let number = Int(scalar.text.trimmingCharacters(in: .whitespaces)) else {
                report(path, at: node.location, "expected an integer, got \"\(scalar.text)\"")
                return nil
            }
            value = number
        case .hugeInteger:
            report(path, at: node.location, "number \(scalar.text) is out of range")
            return nil
        default:
            report(path, at: node.location, "expected an integer, got \(describe(node))")
            return nil
        }
        if let range, !range.contains(value) {
            report(path, at: node.location, Self.rangeMessage(value, range))
            return nil
        }
        return value
    }

    /// A number: an integer or a float, finite, optionally range-checked. Strings are
    /// accepted only when they came from `${VAR}` expansion. Messages quote the user's text.
    mutating func double(_ node: ConfigNode, _ path: String, in range: ClosedRange<Double>? = nil) -> Double? {
        guard let scalar = scalar(node, path, expected: "a number") else { return nil }
        let value: Double
        switch scalar.kind {
        case .integer(let number):
            value = Double(number)
        case .float(let number):
            value = number
        case .string where scalar.isExpanded:
            guard let number = Double(scalar.text.trimmingCharacters(in: .whitespaces)) else {
                report(path, at: node.location, "expected a number, got \"\(scalar.text)\"")
                return nil
            }
            value = number
        case .hugeInteger:
            report(path, at: node.location, "number \(scalar.text) is out of range")
            return nil
        default:
            report(path, at: node.location, "expected a number, got \(describe(node))")
            return nil
        }
        guard value.isFinite else {
            report(path, at: node.location, "number \(scalar.text) is not finite")
            return nil
        }
        if let range, !range.contains(value) {
            report(path, at: node.location, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), got \(scalar.text)")
            return nil
        }
        return value
    }

    /// `1` rather than `1.0` for whole numbers in messages.
    static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }

    static func rangeMessage(_ value: Int, _ range: ClosedRange<Int>) -> String {
        if range.upperBound == Int.max { return "must be at least \(range.lowerBound), got \(value)" }
        return "must be between \(range.lowerBound) and \(range.upperBound), got \(value)"
    }

    mutating func bool(_ node: ConfigNode, _ path: String) -> Bool? {
        guard let scalar = scalar(node, path, expected: "a boolean") else { return nil }
        switch scalar.kind {
        case .boolean(let flag):
            return flag
        case .string where scalar.isExpanded:
            switch scalar.text.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: break
            }
        default:
            break
        }
        report(path, at: node.location, "expected a boolean, got \(describe(node))")
        return nil
    }

    /// A Go-style duration string; the integer 0 is also accepted (no limit / immediate).
    mutating func duration(_ node: ConfigNode, _ path: String) -> Duration? {
        guard let scalar = scalar(node, path, expected: "a duration") else { return nil }
        switch scalar.kind {
        case .integer(0):
            return .zero
        case .integer(let number):
            report(path, at: node.location, "invalid duration \(number) (add a unit, e.g. \"\(number)s\")")
            return nil
        case .string:
            if let duration = DurationParser.parse(scalar.text) { return duration }
            report(path, at: node.location, "invalid duration \"\(scalar.text)\" (use e.g. \"500ms\", \"30s\", \"1m30s\")")
            return nil
        default:
            report(path, at: node.location, "expected a duration such as \"30s\", got \(describe(node))")
            return nil
        }
    }

    /// Whole seconds (TOML `*_secs` keys).
    mutating func seconds(_ node: ConfigNode, _ path: String) -> Duration? {
        int(node, path, in: 0...1_000_000_000).map { .seconds($0) }
    }

    /// Bytes: a non-negative integer or a string such as `"16MB"`.
    mutating func size(_ node: ConfigNode, _ path: String) -> Int? {
        guard let scalar = scalar(node, path, expected: "a size") else { return nil }
        switch scalar.kind {
        case .integer(let number) where number >= 0:
            return number
        case .integer(let number):
            report(path, at: node.location, "invalid size \(number) (must not be negative)")
            return nil
        case .string:
            if let bytes = ByteSizeParser.parse(scalar.text) { return bytes }
            report(path, at: node.location, "invalid size \"\(scalar.text)\" (use bytes or e.g. \"16KB\", \"16MB\", \"1GB\")")
            return nil
        default:
            report(path, at: node.location, "expected a size such as \"16MB\", got \(describe(node))")
            return nil
        }
    }

    /// One of a fixed set of words, with a suggestion when misspelt.
    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: ConfigNode, _ path: String, as type: T.Type) -> T? where T.RawValue == String {
        choice(node, path, among: Array(T.allCases))
    }

    mutating func choice<T: RawRepresentable>(_ node: ConfigNode, _ path: String, among cases: [T]) -> T? where T.RawValue == String {
        guard let text = string(node, path) else { return nil }
        if let value = T(rawValue: text) { return value }
        let names = cases.map(\.rawValue)
        report(path, at: node.location, "unknown value \"\(text)\"" + (Spelling.suggestion(for: text, among: names).map { " (did you mean \"\($0)\"?)" } ?? " (expected one of: \(names.joined(separator: ", ")))"))
        return nil
    }

    mutating func stringList(_ node: ConfigNode, _ path: String) -> [String]? {
        guard let elements = list(node, at: path) else { return nil }
        var result: [String] = []
        var ok = true
        for (elementPath, element) in elements {
            if let text = string(element, elementPath) { result.append(text) } else { ok = false }
        }
        return ok ? result : nil
    }
}

/// The accepted entries of one map, with helpers to read them by key.
struct ConfigTable {
    let path: String
    let location: SourceLocation?
    let entries: [ConfigNode.Entry]

    subscript(key: String) -> ConfigNode? {
        entries.first { $0.key == key }?.value
    }

    func has(_ key: String) -> Bool { self[key] != nil }

    func path(_ key: String) -> String { ConfigReader.join(path, key) }

    func keyLocation(_ key: String) -> SourceLocation? {
        entries.first { $0.key == key }.flatMap { $0.keyLocation ?? $0.value.location }
    }
}
