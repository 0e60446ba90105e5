/// A place in a configuration source: a file position, or the environment variable a value
/// came from in simple mode.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// File name as the user gave it (or `env` for simple mode).
    public var file: String
    /// 1-based line; 0 when only the file is known.
    public var line: Int
    /// 1-based column; 0 when only the line is known.
    public var column: Int

    public init(file: String, line: Int = 0, column: Int = 0) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        if line == 0 { return file }
        if column == 0 { return "\(file):\(line)" }
        return "\(file):\(line):\(column)"
    }
}

/// One problem found while loading a configuration.
///
/// Loading never stops at the first problem: every reader and validator appends diagnostics
/// and carries on, so `loom validate` can print them all at once. Rendered as
/// `gateway.yaml:14:7 routes[2].upstream: unknown upstream "bakend" (did you mean "backend"?)`,
/// or, without a key path, `gateway.yaml: cannot read config file: no such file`.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable {
        /// The configuration is wrong; `loom run` refuses it.
        case error
        /// The configuration is valid but asks for a feature this build does not have yet;
        /// `loom run` refuses it too, because silently ignoring (say) TLS would be unsafe.
        case unsupported
        /// Suspicious but harmless; reported, never fatal.
        case warning
    }

    public var severity: Severity
    /// Where the offending key or value is, when known.
    public var location: SourceLocation?
    /// Key path in the user's own dialect, e.g. `routes[2].upstream` or `upstreams.rails.port`.
    public var path: String
    public var message: String

    public init(_ severity: Severity, at location: SourceLocation?, path: String, _ message: String) {
        self.severity = severity
        self.location = location
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = ""
        if let location { text += path.isEmpty ? "\(location): " : "\(location) " }
        if !path.isEmpty { text += "\(path): " }
        switch severity {
        case .error: break
        case .unsupported: text += "not supported yet: "
        case .warning: text += "warning: "
        }
        return text + message
    }

    /// True for diagnostics that stop `loom run` (errors and unsupported features).
    public var isFatal: Bool { severity != .warning }
}
