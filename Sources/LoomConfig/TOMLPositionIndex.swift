/// Line and column of every key and value in a TOML document, by key path.
///
/// TOMLKit (toml++) validates and parses TOML but exposes no source positions and returns
/// table keys sorted, so this index re-reads the text with a deliberately small scanner.
/// It runs only after TOMLKit accepted the document, so it can be lenient: it understands
/// comments, strings (basic, literal, multi-line), `[table]` and `[[array.of.tables]]` headers
/// (counting elements per array), dotted and quoted keys, inline tables and arrays, and
/// records paths in the same form as diagnostics: `upstreams.rails.port`,
/// `routes[2].add_headers[0].name`.
struct TOMLPositionIndex: Sendable {
    /// Where each key is written (for a table, its header; for an array element, the element).
    private(set) var keys: [String: SourceLocation] = [:]
    /// Where each value starts.
    private(set) var values: [String: SourceLocation] = [:]

    init(source: String, file: String) {
        var scanner = Scanner(chars: Array(source.unicodeScalars), file: file)
        scanner.run()
        keys = scanner.keys
        values = scanner.values
    }
}

extension TOMLPositionIndex {
    /// The scanner proper; `pos` only moves forward and every loop consumes at least one
    /// character, so even text TOMLKit would reject cannot hang it.
    fileprivate struct Scanner {
        let chars: [Unicode.Scalar]
        let file: String
        var pos = 0
        var line = 1
        var column = 1
        var keys: [String: SourceLocation] = [:]
        var values: [String: SourceLocation] = [:]
        /// Elements seen so far per array of tables, keyed by the array's resolved path.
        var arrayCounts: [String: Int] = [:]
        /// Resolved path of the current `[table]`, "" at the top level.
        var tablePrefix = ""

        init(chars: [Unicode.Scalar], file: String) {
            self.chars = chars
            self.file = file
        }

        var peek: Unicode.Scalar? { pos < chars.count ? chars[pos] : nil }
        func peek(_ offset: Int) -> Unicode.Scalar? { pos + offset < chars.count ? chars[pos + offset] : nil }
        var here: SourceLocation { SourceLocation(file: file, line: line, column: column) }

        mutating func advance() {
            guard pos < chars.count else { return }
            if chars[pos] == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            pos += 1
        }

        mutating func run() {
            while true {
                skipBlank(newlines: true)
                guard let c = peek else { return }
                let start = pos
                if c == "[" {
                    header()
                } else {
                    keyValue(prefix: tablePrefix)
                }
                skipToLineEnd()
                if pos == start { advance() }
            }
        }

        /// Skips spaces, tabs and comments, and newlines too when asked.
        mutating func skipBlank(newlines: Bool) {
            while let c = peek {
                if c == " " || c == "\t" || c == "\r" || (newlines && c == "\n") {
                    advance()
                } else if c == "#" {
                    while let d = peek, d != "\n" { advance() }
                } else {
                    return
                }
            }
        }

        mutating func skipToLineEnd() {
            while let c = peek, c != "\n" { advance() }
        }

        static func join(_ prefix: String, _ key: String) -> String {
            prefix.isEmpty ? key : "\(prefix).\(key)"
        }

        mutating func record(_ path: String, key location: SourceLocation) {
            if keys[path] == nil { keys[path] = location }
        }

        /// `[a.b]` or `[[a.b]]`: resolves each component against the arrays of tables seen so
        /// far, so `[routes.x]` after the second `[[routes]]` becomes `routes[1].x`.
        mutating func header() {
            let location = here
            advance()
            let isArray = peek == "["
            if isArray { advance() }
            let components = dottedKey()
            var resolved = ""
            for (i, component) in components.enumerated() {
                resolved = Self.join(resolved, component)
                if i == components.count - 1 && isArray {
                    record(resolved, key: location)
                    let n = arrayCounts[resolved, default: 0]
                    arrayCounts[resolved] = n + 1
                    resolved += "[\(n)]"
                } else if let n = arrayCounts[resolved] {
                    resolved += "[\(n - 1)]"
                }
                record(resolved, key: location)
            }
            if values[resolved] == nil { values[resolved] = location }
            tablePrefix = resolved
        }

        /// A possibly dotted, possibly quoted key; stops before `=`, `]` or anything else.
        mutating func dottedKey() -> [String] {
            var components: [String] = []
            while true {
                skipBlank(newlines: false)
                guard let c = peek else { break }
                if c == "\"" || c == "'" {
                    components.append(quoted(c))
                } else {
                    var bare = ""
                    while let d = peek, Self.isBareKeyChar(d) {
                        bare.unicodeScalars.append(d)
                        advance()
                    }
                    if bare.isEmpty { break }
                    components.append(bare)
                }
                skipBlank(newlines: false)
                guard peek == "." else { break }
                advance()
            }
            return components
        }

        static func isBareKeyChar(_ c: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
        }

        /// A one-line quoted string starting at `quote`; returns its content (escapes kept
        /// as written, which is fine for key names).
        mutating func quoted(_ quote: Unicode.Scalar) -> String {
            var text = ""
            advance()
            while let c = peek, c != quote, c != "\n" {
                if c == "\\" && quote == "\"" {
                    advance()
                    if let escaped = peek { text.unicodeScalars.append(escaped) }
                    advance()
                    continue
                }
                text.unicodeScalars.append(c)
                advance()
            }
            advance()
            return text
        }

        mutating func keyValue(prefix: String) {
            let location = here
            let components = dottedKey()
            guard !components.isEmpty else { return }
            var path = prefix
            for component in components {
                path = Self.join(path, component)
                record(path, key: location)
            }
            skipBlank(newlines: false)
            guard peek == "=" else { return }
            advance()
            skipBlank(newlines: false)
            value(path: path)
        }

        mutating func value(path: String) {
            values[path] = here
            guard let c = peek else { return }
            switch c {
            case "{":
                advance()
                while let d = peek, d != "}" {
                    let start = pos
                    skipBlank(newlines: true)
                    if peek == "}" { break }
                    keyValue(prefix: path)
                    skipBlank(newlines: true)
                    if peek == "," { advance() }
                    if pos == start { advance() }
                }
                advance()
            case "[":
                advance()
                var index = 0
                while true {
                    skipBlank(newlines: true)
                    guard let d = peek else { return }
                    if d == "]" { advance(); return }
                    let start = pos
                    let element = "\(path)[\(index)]"
                    record(element, key: here)
                    value(path: element)
                    index += 1
                    skipBlank(newlines: true)
                    if peek == "," { advance() }
                    if pos == start { advance() }
                }
            case "\"", "'":
                string(c)
            default:
                while let d = peek, d != ",", d != "]", d != "}", d != "\n", d != "#" { advance() }
            }
        }

        /// Skips a string value of any of the four kinds.
        mutating func string(_ quote: Unicode.Scalar) {
            guard peek(1) == quote && peek(2) == quote else {
                _ = quoted(quote)
                return
            }
            advance(); advance(); advance()
            while let c = peek {
                if c == "\\" && quote == "\"" {
                    advance(); advance()
                    continue
                }
                if c == quote && peek(1) == quote && peek(2) == quote {
                    advance(); advance(); advance()
                    // Up to two more quotes may belong to the content ("""a"""").
                    if peek == quote { advance() }
                    if peek == quote { advance() }
                    return
                }
                advance()
            }
        }
    }
}
