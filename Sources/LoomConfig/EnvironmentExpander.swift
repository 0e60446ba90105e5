/// Replaces `${VAR}` and `${VAR:-default}` in every string value of a config tree.
///
/// Expansion happens on the tree, before any decoding, so it works the same in both dialects
/// and in every key, and a value such as `port = "${PORT}"` can then be read as a number.
/// `$$` writes a literal `$`; a `$` not followed by `{` or `$` is kept as is. `:-` uses the
/// default when the variable is unset or empty, as in POSIX shells. An unset variable without
/// default is an error at that value, and the value is marked invalid so that decoders do not
/// report it a second time.
struct EnvironmentExpander {
    let environment: [String: String]
    let file: String

    /// Expands `node` in place and returns the problems found.
    func expand(_ node: inout ConfigNode, path: String = "") -> [Diagnostic] {
        switch node.value {
        case .map(var entries):
            var diagnostics: [Diagnostic] = []
            for i in entries.indices {
                let key = entries[i].key
                diagnostics += expand(&entries[i].value, path: path.isEmpty ? key : "\(path).\(key)")
            }
            node.value = .map(entries)
            return diagnostics
        case .sequence(var elements):
            var diagnostics: [Diagnostic] = []
            for i in elements.indices {
                diagnostics += expand(&elements[i], path: "\(path)[\(i)]")
            }
            node.value = .sequence(elements)
            return diagnostics
        case .scalar(var scalar):
            guard scalar.kind == .string, scalar.text.contains("$") else { return [] }
            switch substitute(scalar.text) {
            case .success(let text):
                if text != scalar.text {
                    scalar.text = text
                    scalar.isExpanded = true
                }
            case .failure(let problem):
                scalar.kind = .invalid
                node.value = .scalar(scalar)
                let location = node.location ?? SourceLocation(file: file)
                return [Diagnostic(.error, at: location, path: path, problem.message)]
            }
            node.value = .scalar(scalar)
            return []
        }
    }

    /// Why a string could not be expanded.
    struct Problem: Error {
        var message: String
    }

    /// Expands one string; exposed for tests.
    func substitute(_ text: String) -> Result<String, Problem> {
        var output = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            output += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$") {
                output += "$"
                rest = after.dropFirst()
                continue
            }
            guard after.hasPrefix("{") else {
                output += "$"
                rest = after
                continue
            }
            guard let close = after.firstIndex(of: "}") else {
                return .failure(Problem(message: "unterminated \"${\" in \"\(text)\""))
            }
            let body = after[after.index(after: after.startIndex)..<close]
            rest = after[after.index(after: close)...]
            let name: Substring
            var fallback: Substring?
            if let range = body.range(of: ":-") {
                name = body[..<range.lowerBound]
                fallback = body[range.upperBound...]
            } else {
                name = body
            }
            guard Self.isValidName(name) else {
                return .failure(Problem(message: "invalid variable name \"\(name)\" in \"\(text)\""))
            }
            if let value = environment[String(name)], !(fallback != nil && value.isEmpty) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                return .failure(Problem(message: "environment variable \"\(name)\" is not set"))
            }
        }
        output += rest
        return .success(output)
    }

    /// POSIX-style names: letters, digits and `_`, not starting with a digit.
    static func isValidName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)) }
    }
}
