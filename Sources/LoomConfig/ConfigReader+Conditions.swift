/// Route conditions on request headers and query parameters, the same in both dialects:
/// a list of `{name, value}` (equals), `{name, present: true|false}` or `{name, regex}`.
extension ConfigReader {
    enum ConditionField {
        case header, query

        var noun: String { self == .header ? "header" : "query parameter" }
    }

    /// A list of conditions at `path`; nil after reporting when it is not a list.
    mutating func fieldConditions(_ node: ConfigNode, at path: String, _ field: ConditionField) -> [FieldCondition]? {
        guard let elements = list(node, at: path) else { return nil }
        return elements.compactMap { elementPath, element in
            table(element, at: elementPath, allowed: ["name", "value", "present", "regex"]).flatMap { fieldCondition($0, field) }
        }
    }

    /// One condition table; exactly one of `value`, `present`, `regex`.
    mutating func fieldCondition(_ table: ConfigTable, _ field: ConditionField) -> FieldCondition? {
        let name: String?
        switch field {
        case .header: name = table.has("name") ? headerName(table, "name") : nil
        case .query: name = string(table, "name")
        }
        if !table.has("name") { report(table.path, at: table.location, "missing required key \"name\"") }
        if field == .query, let name, name.isEmpty {
            report(table.path("name"), at: table["name"]?.location, "query parameter name must not be empty")
            return nil
        }
        let tests = ["value", "present", "regex"].filter(table.has)
        guard tests.count == 1 else {
            report(table.path, at: table.location, tests.isEmpty
                ? "a \(field.noun) condition needs one of \"value\", \"present\" and \"regex\""
                : "only one of \"value\", \"present\" and \"regex\" may be set")
            return nil
        }
        let test: FieldCondition.Test?
        switch tests[0] {
        case "value": test = string(table, "value").map { .equals($0) }
        case "present": test = bool(table, "present").map { $0 ? .present : .absent }
        default: test = string(table, "regex").flatMap { checkedRegex($0, table.path("regex"), at: table["regex"]?.location) }.map { .matches($0) }
        }
        guard let name, let test else { return nil }
        return FieldCondition(name: name, test: test)
    }

    /// `text` if it compiles as a regular expression (Swift `Regex` syntax, which is PCRE's
    /// for everything common), else nil after reporting where it fails.
    mutating func checkedRegex(_ text: String, _ path: String, at location: SourceLocation?) -> String? {
        do {
            _ = try Regex(text)
            return text
        } catch {
            report(path, at: location, "invalid regular expression \"\(text)\": \(error)")
            return nil
        }
    }
}
