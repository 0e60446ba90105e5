import Foundation

/// A piece of configuration or a control-socket request read from JSON (or YAML) text, with
/// its keys in the order they were written: a route or upstream given to the control socket
/// keeps the user's key order when it is written back to the configuration file.
public struct ConfigFragment: Sendable {
    var node: ConfigNode

    init(_ node: ConfigNode) {
        self.node = node
    }

    /// Strict JSON: the text must be one JSON object. The error says what is wrong.
    public static func parseJSON(_ text: String) -> Result<ConfigFragment, FragmentError> {
        switch JSONTreeReader.parse(text) {
        case .failure(let failure): return .failure(FragmentError(message: "malformed JSON: \(failure.message)"))
        case .success(let node):
            guard case .map = node.value else { return .failure(FragmentError(message: "expected a JSON object")) }
            return .success(ConfigFragment(node))
        }
    }

    /// A YAML (or JSON) document holding a mapping.
    public static func parseYAML(_ text: String) -> Result<ConfigFragment, FragmentError> {
        switch ConfigNode.parseYAML(text, file: "") {
        case .failure(let error): return .failure(FragmentError(message: error.diagnostic.message))
        case .success(let node):
            guard case .map = node.value else { return .failure(FragmentError(message: "expected a mapping")) }
            return .success(ConfigFragment(node.withoutLocations()))
        }
    }

    public struct FragmentError: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    // MARK: Reading

    /// The mapping's keys in order (empty unless a mapping).
    public var keys: [String] {
        guard case .map(let entries) = node.value else { return [] }
        return entries.map(\.key)
    }

    public subscript(key: String) -> ConfigFragment? {
        guard case .map(let entries) = node.value else { return nil }
        return entries.last { $0.key == key }.map { ConfigFragment($0.value) }
    }

    public var isMapping: Bool {
        if case .map = node.value { return true }
        return false
    }

    /// A string scalar's text (quoted in JSON).
    public var string: String? {
        guard case .scalar(let scalar) = node.value, scalar.kind == .string else { return nil }
        return scalar.text
    }

    public var integer: Int? {
        guard case .scalar(let scalar) = node.value, case .integer(let value) = scalar.kind else { return nil }
        return value
    }

    public var boolean: Bool? {
        guard case .scalar(let scalar) = node.value, case .boolean(let value) = scalar.kind else { return nil }
        return value
    }

    /// The value as compact JSON, keys in order.
    public var json: String {
        var out = ""
        Self.writeJSON(node, to: &out)
        return out
    }

    private static func writeJSON(_ node: ConfigNode, to out: inout String) {
        switch node.value {
        case .map(let entries):
            out += "{"
            for (index, entry) in entries.enumerated() {
                if index > 0 { out += "," }
                out += quoted(entry.key) + ":"
                writeJSON(entry.value, to: &out)
            }
            out += "}"
        case .sequence(let elements):
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                writeJSON(element, to: &out)
            }
            out += "]"
        case .scalar(let scalar):
            switch scalar.kind {
            case .integer(let value): out += String(value)
            case .hugeInteger where scalar.text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }): out += scalar.text
            case .float(let value) where value.isFinite: out += String(value)
            case .boolean(let value): out += value ? "true" : "false"
            case .null: out += "null"
            default: out += quoted(scalar.text)
            }
        }
    }

    /// `text` as a JSON string literal.
    public static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}

extension ConfigNode {
    /// The tree with every position dropped: a fragment's positions are in a control
    /// request, not in the configuration file it joins.
    func withoutLocations() -> ConfigNode {
        switch value {
        case .scalar: return ConfigNode(value, at: nil)
        case .sequence(let elements): return ConfigNode(.sequence(elements.map { $0.withoutLocations() }), at: nil)
        case .map(let entries):
            return ConfigNode(.map(entries.map { Entry(key: $0.key, keyLocation: nil, value: $0.value.withoutLocations()) }), at: nil)
        }
    }
}
