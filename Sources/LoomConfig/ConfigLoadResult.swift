/// What loading a configuration produced: the model (when anything usable could be read)
/// and every problem found along the way.
///
/// Loading never throws: an unreadable file or a syntax error is a diagnostic like any other,
/// so `loom validate` and a reload can print the full list and decide for themselves.
public struct ConfigLoadResult: Sendable {
    /// `nil` only when nothing usable could be read (unreadable file, syntax error).
    public var configuration: LoomConfiguration?
    /// Every problem found, in source order: errors, unsupported features, warnings.
    public var diagnostics: [Diagnostic]
    /// The parsed file, for runtime changes and `save` (nil when nothing was parsed, and in
    /// simple mode).
    public var document: ConfigDocument?

    public init(configuration: LoomConfiguration?, diagnostics: [Diagnostic], document: ConfigDocument? = nil) {
        self.configuration = configuration
        self.diagnostics = diagnostics
        self.document = document
    }

    /// True when `loom run` must refuse this configuration.
    public var hasFatal: Bool { diagnostics.contains { $0.isFatal } }
}
