import Foundation
import Yams

/// A configuration file as parsed, before `${VAR}` expansion: what the control socket edits
/// (adding a route, draining an endpoint) and what `save` writes back.
///
/// A runtime change is made here, to the tree, and the tree is then loaded like a file
/// (expanded, decoded, validated), so a change from the control socket is checked exactly as
/// the same edit to the file would be, and the file written back keeps its `${VAR}`
/// references rather than their values. Only Loom YAML documents can be edited: WarpDrive
/// TOML keeps its routes and upstreams in another shape.
public struct ConfigDocument: Sendable {
    public let fileName: String
    public let dialect: ConfigDialect
    /// The text the document was parsed from (edits do not change it).
    public let text: String
    var root: ConfigNode

    /// Parses `text`; the dialect by `fileName` or content when nil. A syntax error comes
    /// back as its diagnostic.
    public static func parse(text: String, fileName: String, dialect: ConfigDialect? = nil) -> Result<ConfigDocument, Diagnostic> {
        let dialect = dialect ?? ConfigLoader.detectDialect(fileName: fileName, text: text)
        let parsed = dialect == .warpDriveTOML ? ConfigNode.parseTOML(text, file: fileName) : ConfigNode.parseYAML(text, file: fileName)
        return parsed.map { ConfigDocument(fileName: fileName, dialect: dialect, text: text, root: $0) }.mapError(\.diagnostic)
    }

    /// Expands, decodes and validates the document (see `ConfigLoader`).
    public func load(environment: [String: String], checks: ConfigChecks = .none) -> ConfigLoadResult {
        var root = self.root
        var diagnostics = EnvironmentExpander(environment: environment, file: fileName).expand(&root)
        let configuration: LoomConfiguration
        let reader: ConfigReader
        switch dialect {
        case .loomYAML:
            var decoder = LoomYAMLDecoder(file: fileName)
            decoder.decode(root)
            (configuration, reader) = (decoder.config, decoder.reader)
        case .warpDriveTOML:
            var decoder = WarpDriveTOMLDecoder(file: fileName)
            decoder.decode(root)
            (configuration, reader) = (decoder.config, decoder.reader)
        }
        diagnostics += reader.diagnostics
        diagnostics += ConfigValidator.validate(
            configuration, sourceMap: reader.sourceMap, decodedCleanly: !diagnostics.contains { $0.severity == .error }, checks: checks)
        return ConfigLoadResult(configuration: configuration, diagnostics: ConfigLoader.sortedBySource(diagnostics), document: self)
    }

    // MARK: - Edits

    /// A change to the document, in the configuration's own terms.
    public enum Edit: Sendable, CustomStringConvertible {
        /// A Loom YAML route (`id`, `path`, ...), inserted at `at` of the `routes` list
        /// (file order; appended when nil).
        case addRoute(ConfigFragment, at: Int?)
        case removeRoute(name: String)
        /// A Loom YAML upstream (`name`, `endpoints`, ...), appended.
        case addUpstream(ConfigFragment)
        case removeUpstream(name: String)
        case addEndpoint(upstream: String, address: String, weight: Int?, backup: Bool?)
        case removeEndpoint(upstream: String, address: String)
        /// Sets the endpoint's `weight` and/or `drain` (false removes the key).
        case setEndpoint(upstream: String, address: String, weight: Int?, drain: Bool?)

        public var description: String {
            switch self {
            case .addRoute(let route, _): "add route \"\(route["id"]?.string ?? "")\""
            case .removeRoute(let name): "remove route \"\(name)\""
            case .addUpstream(let upstream): "add upstream \"\(upstream["name"]?.string ?? "")\""
            case .removeUpstream(let name): "remove upstream \"\(name)\""
            case .addEndpoint(let upstream, let address, _, _): "add endpoint \(address) to upstream \"\(upstream)\""
            case .removeEndpoint(let upstream, let address): "remove endpoint \(address) of upstream \"\(upstream)\""
            case .setEndpoint(let upstream, let address, let weight, let drain):
                [drain.map { "\($0 ? "drain" : "undrain") endpoint \(address) of upstream \"\(upstream)\"" },
                 weight.map { "set the weight of endpoint \(address) of upstream \"\(upstream)\" to \($0)" }].compactMap { $0 }.joined(separator: ", ")
            }
        }
    }

    /// The document with `edit` made. `environment` expands names and addresses for
    /// matching (the file may spell them with `${VAR}`). The result is not validated yet:
    /// `load` it.
    public func applying(_ edit: Edit, environment: [String: String]) throws(ConfigChangeError) -> ConfigDocument {
        let fail = { (reason: String) in ConfigChangeError(change: edit.description, reason: reason) }
        guard dialect == .loomYAML else {
            throw fail("runtime changes need a Loom YAML configuration file (\(fileName) is WarpDrive TOML): edit the file and reload")
        }
        var expanded = root
        _ = EnvironmentExpander(environment: environment, file: fileName).expand(&expanded)
        var document = self
        switch edit {
        case .addRoute(let route, let at):
            guard route.isMapping, let name = route["id"]?.string, !name.isEmpty else { throw fail("a route needs an \"id\" string") }
            let routes = try Self.list("routes", in: expanded, fail)
            if Self.index(of: name, key: "id", in: routes) != nil { throw fail("a route with that id exists") }
            let position = at ?? routes.count
            guard (0...routes.count).contains(position) else { throw fail("position \(position) is outside 0...\(routes.count)") }
            try document.editList("routes", fail) { $0.insert(route.node, at: position) }
        case .removeRoute(let name):
            guard let index = Self.index(of: name, key: "id", in: try Self.list("routes", in: expanded, fail)) else {
                throw fail("there is no route with that id")
            }
            try document.editList("routes", fail) { $0.remove(at: index) }
        case .addUpstream(let upstream):
            guard upstream.isMapping, let name = upstream["name"]?.string, !name.isEmpty else { throw fail("an upstream needs a \"name\" string") }
            if Self.index(of: name, key: "name", in: try Self.list("upstreams", in: expanded, fail)) != nil {
                throw fail("an upstream with that name exists")
            }
            try document.editList("upstreams", fail) { $0.append(upstream.node) }
        case .removeUpstream(let name):
            guard let index = Self.index(of: name, key: "name", in: try Self.list("upstreams", in: expanded, fail)) else {
                throw fail("there is no upstream with that name")
            }
            try document.editList("upstreams", fail) { $0.remove(at: index) }
        case .addEndpoint(let upstream, let address, let weight, let backup):
            guard let endpoint = AddressParser.endpoint(address) else { throw fail(Self.badAddress(address)) }
            let (index, endpoints) = try Self.endpoints(of: upstream, in: expanded, fail)
            if endpoints.contains(where: { Self.endpoint(of: $0) == endpoint }) { throw fail("the upstream has that endpoint") }
            var element = ConfigNode.string(endpoint.description)
            if weight != nil || backup != nil {
                element = .map([("address", element)] + [weight.map { ("weight", .integer($0)) }, backup.map { ("backup", .boolean($0)) }].compactMap { $0 })
            }
            try document.editEndpoints(ofUpstreamAt: index, fail) { $0.append(element) }
        case .removeEndpoint(let upstream, let address):
            let (index, position) = try Self.endpointPosition(upstream, address, in: expanded, fail)
            try document.editEndpoints(ofUpstreamAt: index, fail) { $0.remove(at: position) }
        case .setEndpoint(let upstream, let address, let weight, let drain):
            let (index, position) = try Self.endpointPosition(upstream, address, in: expanded, fail)
            try document.editEndpoints(ofUpstreamAt: index, fail) { endpoints in
                var element = endpoints[position]
                if case .scalar = element.value { element = .map([("address", element)]) }
                if let weight { element.set("weight", weight == 1 ? nil : .integer(weight)) }
                if let drain { element.set("drain", drain ? .boolean(true) : nil) }
                // `{address: x}` alone reads better as plain `x`.
                if case .map(let entries) = element.value, entries.count == 1, entries[0].key == "address" { element = entries[0].value }
                endpoints[position] = element
            }
        }
        return document
    }

    // MARK: Tree access

    /// The top-level list `key` (empty when the file has none).
    private static func list(_ key: String, in root: ConfigNode, _ fail: (String) -> ConfigChangeError) throws(ConfigChangeError) -> [ConfigNode] {
        guard let node = root.entry(key) else { return [] }
        guard case .sequence(let elements) = node.value else { throw fail("the file's \"\(key)\" is not a list") }
        return elements
    }

    /// The index of the list element whose `key` (after expansion) is `name`.
    private static func index(of name: String, key: String, in elements: [ConfigNode]) -> Int? {
        elements.firstIndex { $0.entry(key)?.scalarText == name }
    }

    private static func endpoints(
        of upstream: String, in root: ConfigNode, _ fail: (String) -> ConfigChangeError
    ) throws(ConfigChangeError) -> (upstream: Int, endpoints: [ConfigNode]) {
        guard let index = index(of: upstream, key: "name", in: try list("upstreams", in: root, fail)) else {
            throw fail("there is no upstream with that name")
        }
        guard case .sequence(let elements)? = try list("upstreams", in: root, fail)[index].entry("endpoints")?.value else {
            throw fail("the upstream's \"endpoints\" is not a list")
        }
        return (index, elements)
    }

    private static func endpointPosition(
        _ upstream: String, _ address: String, in root: ConfigNode, _ fail: (String) -> ConfigChangeError
    ) throws(ConfigChangeError) -> (upstream: Int, position: Int) {
        guard let endpoint = AddressParser.endpoint(address) else { throw fail(badAddress(address)) }
        let (index, endpoints) = try endpoints(of: upstream, in: root, fail)
        guard let position = endpoints.firstIndex(where: { Self.endpoint(of: $0) == endpoint }) else {
            throw fail("the upstream has no endpoint \(endpoint)")
        }
        return (index, position)
    }

    /// The endpoint an `endpoints` element names (`"host:port"` or `{address: ...}`).
    private static func endpoint(of element: ConfigNode) -> Endpoint? {
        (element.scalarText ?? element.entry("address")?.scalarText).flatMap(AddressParser.endpoint)
    }

    private static func badAddress(_ address: String) -> String {
        "invalid endpoint \"\(address)\" (use \"host:port\", \"[::1]:port\" or \"unix:/path\")"
    }

    private mutating func editList(_ key: String, _ fail: (String) -> ConfigChangeError, _ body: (inout [ConfigNode]) -> Void) throws(ConfigChangeError) {
        guard case .map(var entries) = root.value else { throw fail("the file's top level is not a mapping") }
        var elements: [ConfigNode] = []
        let index = entries.firstIndex { $0.key == key }
        if let index {
            guard case .sequence(let existing) = entries[index].value.value else { throw fail("the file's \"\(key)\" is not a list") }
            elements = existing
        }
        body(&elements)
        let list = ConfigNode(.sequence(elements), at: index.flatMap { entries[$0].value.location })
        if let index { entries[index].value = list } else { entries.append(.init(key: key, keyLocation: nil, value: list)) }
        root.value = .map(entries)
    }

    private mutating func editEndpoints(
        ofUpstreamAt index: Int, _ fail: (String) -> ConfigChangeError, _ body: (inout [ConfigNode]) -> Void
    ) throws(ConfigChangeError) {
        try editList("upstreams", fail) { upstreams in
            guard case .sequence(var endpoints)? = upstreams[index].entry("endpoints")?.value else { return }
            body(&endpoints)
            upstreams[index].set("endpoints", ConfigNode(.sequence(endpoints), at: upstreams[index].entry("endpoints")?.location))
        }
    }

    // MARK: - Writing

    /// The document as Loom YAML text. Comments and the original layout are not kept (the
    /// parser drops them); `${VAR}` references are.
    public func yaml() throws -> String {
        try Yams.serialize(node: Self.yams(root), indent: 2, width: -1, allowUnicode: true, sequenceStyle: .block, mappingStyle: .block)
    }

    private static func yams(_ node: ConfigNode) -> Yams.Node {
        switch node.value {
        case .map(let entries):
            return .mapping(.init(entries.map { (Yams.Node.scalar(.init($0.key, Tag(.str), plainIfString($0.key))), yams($0.value)) }))
        case .sequence(let elements):
            return .sequence(.init(elements.map(yams)))
        case .scalar(let scalar):
            switch scalar.kind {
            case .integer, .hugeInteger: return .scalar(.init(scalar.text, Tag(.int), .plain))
            case .float: return .scalar(.init(scalar.text, Tag(.float), .plain))
            case .boolean(let value): return .scalar(.init(scalar.isUntypedText ? scalar.text : (value ? "true" : "false"), Tag(.bool), .plain))
            case .null: return .scalar(.init("null", Tag(.null), .plain))
            case .string, .dateTime, .invalid: return .scalar(.init(scalar.text, Tag(.str), plainIfString(scalar.text)))
            }
        }
    }

    /// Plain (libyaml quotes it if it must) unless a plain scalar would read as something
    /// other than this string (`"8080"`, `"true"`, `""`); double-quoted when it spans lines,
    /// where `\n` reads better than a folded block.
    private static func plainIfString(_ text: String) -> Yams.Node.Scalar.Style {
        if text.isEmpty || text.contains(where: \.isNewline) { return .doubleQuoted }
        return Resolver.default.resolveTag(of: Yams.Node(text)) == .str ? .any : .doubleQuoted
    }
}

extension ConfigNode {
    static func string(_ text: String) -> ConfigNode {
        ConfigNode(.scalar(ConfigScalar(kind: .string, text: text)), at: nil)
    }

    static func integer(_ value: Int) -> ConfigNode {
        ConfigNode(.scalar(ConfigScalar(kind: .integer(value), text: String(value))), at: nil)
    }

    static func boolean(_ value: Bool) -> ConfigNode {
        ConfigNode(.scalar(ConfigScalar(kind: .boolean(value), text: value ? "true" : "false")), at: nil)
    }

    static func map(_ pairs: [(String, ConfigNode)]) -> ConfigNode {
        ConfigNode(.map(pairs.map { Entry(key: $0.0, keyLocation: nil, value: $0.1) }), at: nil)
    }

    /// The value of a mapping's `key`.
    func entry(_ key: String) -> ConfigNode? {
        guard case .map(let entries) = value else { return nil }
        return entries.last { $0.key == key }?.value
    }

    /// A scalar's text (nil for a mapping or list).
    var scalarText: String? {
        guard case .scalar(let scalar) = value, scalar.kind != .null else { return nil }
        return scalar.text
    }

    /// Sets (or, with nil, removes) a mapping's `key`, keeping its place.
    mutating func set(_ key: String, _ newValue: ConfigNode?) {
        guard case .map(var entries) = value else { return }
        if let index = entries.firstIndex(where: { $0.key == key }) {
            if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
        } else if let newValue {
            entries.append(Entry(key: key, keyLocation: nil, value: newValue))
        }
        value = .map(entries)
    }
}
