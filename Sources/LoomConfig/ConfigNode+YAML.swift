import Foundation

import Yams

/// Building a `ConfigNode` tree from Loom YAML text.
///
/// `Yams.compose` keeps every node's `Mark` (1-based line and column), which is all the
/// position information diagnostics need; nothing is decoded through `Codable`, so a wrong
/// type becomes a diagnostic with a key path instead of a thrown `DecodingError`.
extension ConfigNode {
    /// Parses YAML into a tree, or returns the syntax error as a diagnostic.
    /// An empty document is an empty map (every setting defaulted).
    static func parseYAML(_ text: String, file: String) -> Result<ConfigNode, ConfigSyntaxError> {
        do {
            guard let root = try Yams.compose(yaml: text) else {
                return .success(ConfigNode(.map([]), at: SourceLocation(file: file, line: 1, column: 1)))
            }
            return .success(ConfigNode(yaml: root, file: file))
        } catch let error as YamlError {
            return .failure(ConfigSyntaxError(diagnostic: diagnostic(for: error, file: file)))
        } catch {
            return .failure(ConfigSyntaxError(diagnostic: Diagnostic(.error, at: SourceLocation(file: file), path: "", "invalid YAML: \(error)")))
        }
    }

    private init(yaml node: Yams.Node, file: String) {
        let location = node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
        switch node {
        case .scalar(let scalar):
            self.init(.scalar(ConfigNode.scalar(from: node, scalar)), at: location)
        case .mapping(let mapping):
            let entries = mapping.map { pair in
                Entry(
                    key: pair.key.scalar?.string ?? "\(pair.key)",
                    keyLocation: pair.key.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) },
                    value: ConfigNode(yaml: pair.value, file: file)
                )
            }
            self.init(.map(entries), at: location)
        case .sequence(let sequence):
            self.init(.sequence(sequence.map { ConfigNode(yaml: $0, file: file) }), at: location)
        case .alias:
            // compose resolves aliases to their anchored node; a bare alias should not reach
            // here, and null is the least surprising reading if it does.
            self.init(.scalar(ConfigScalar(kind: .null, text: "", isUntypedText: true)), at: location)
        }
    }

    /// Types a scalar by the tag the YAML core schema resolved. Integers are parsed here
    /// (not with Yams' constructor) so an overflowing number cannot trap.
    private static func scalar(from node: Yams.Node, _ scalar: Yams.Node.Scalar) -> ConfigScalar {
        let text = scalar.string
        let kind: ConfigScalar.Kind
        switch node.tag.rawValue {
        case Tag.Name.null.rawValue:
            kind = .null
        case Tag.Name.bool.rawValue:
            kind = node.bool.map(ConfigScalar.Kind.boolean) ?? .string
        case Tag.Name.int.rawValue:
            kind = parseYAMLInteger(text).map(ConfigScalar.Kind.integer) ?? .hugeInteger
        case Tag.Name.float.rawValue:
            kind = node.float.map(ConfigScalar.Kind.float) ?? .string
        default:
            kind = .string
        }
        return ConfigScalar(kind: kind, text: text, isUntypedText: true)
    }

    /// Decimal, `0x`, `0o` and `0b` integers with `_` separators; nil on overflow or for
    /// YAML 1.1 sexagesimal forms, which then read as strings (and fail as integers).
    static func parseYAMLInteger(_ text: String) -> Int? {
        var digits = Substring(text.replacingOccurrences(of: "_", with: ""))
        var negative = false
        if digits.hasPrefix("-") || digits.hasPrefix("+") {
            negative = digits.hasPrefix("-")
            digits = digits.dropFirst()
        }
        var radix = 10
        for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] where digits.hasPrefix(prefix) {
            radix = base
            digits = digits.dropFirst(2)
        }
        guard !digits.isEmpty, let magnitude = Int(digits, radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }

    private static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) " } ?? ""
            return Diagnostic(.error, at: at(mark), path: "", "invalid YAML: \(detail)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams stops at the first mapping with duplicates and points at the first copy.
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return Diagnostic(.error, at: at(context.mark), path: "", "duplicate key \(keys) in mapping")
        case .reader(let problem, _, _, _):
            return Diagnostic(.error, at: SourceLocation(file: file), path: "", "invalid YAML: \(problem)")
        default:
            return Diagnostic(.error, at: SourceLocation(file: file), path: "", "invalid YAML: \(error)")
        }
    }
}
