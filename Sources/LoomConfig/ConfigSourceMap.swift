/// Where each part of a decoded configuration was written, for diagnostics that the
/// dialect-independent `ConfigValidator` raises after decoding.
///
/// Decoders fill it as they walk the tree: every key path they visit gets a location, and
/// every listener, upstream and route appended to the model gets the key paths of its
/// fields in the user's dialect (`routes[1].path_prefix` in TOML, `routes[1].path` in YAML;
/// `upstreams.rails` vs `upstreams[0]`). Entities are indexed like the model arrays, so an
/// entry the decoder had to drop cannot shift the others.
struct ConfigSourceMap: Sendable {
    /// The model collections the validator reports on (`plugin`: top-level `plugins`).
    enum Section: Sendable, Hashable { case listener, upstream, route, plugin }

    /// Fields the validator may point at. `entity` is the listener/upstream/route itself.
    enum Field: Sendable, Hashable {
        case entity, name, address, `protocol`, tls
        case endpoints, endpoint(Int), loadBalancing, hashKey, health, circuitBreaker, outlierDetection, retry, slowStart, process
        case path, upstream, redirect, stripPrefix, rewrite, requireAuth, timeouts, retryNonIdempotent, filters
        /// A route's `plugins` list, and its N-th name.
        case plugins, plugin(Int)
        /// The name of the N-th entry of a route's header rule list (`add_headers`,
        /// `set_response_headers`, …, by key) / N-th `respond.headers` entry.
        case headerRule(String, Int), responseHeader(Int)
    }

    /// File-wide planned features without an entity.
    enum Global: Sendable, Hashable { case acme, cache, postgres, xSendfile }

    var file: String
    /// Location of every key path seen (a key's own position; a list element's position).
    var locations: [String: SourceLocation] = [:]
    private var entities: [Section: [[Field: String]]] = [:]
    private var globals: [Global: String] = [:]
    /// Route entries written in the source, valid or not (the "no routes" warning is only
    /// for files that have none, not for files whose routes all failed to decode).
    var routeEntriesInSource = 0
    /// Upstreams (by model index) whose endpoints the decoder already reported as broken:
    /// "has no endpoints" would only repeat that.
    var upstreamsWithBrokenEndpoints: Set<Int> = []

    init(file: String) {
        self.file = file
    }

    /// Records the field paths of the next entity appended to the model's `section` array.
    /// `fields[.entity]` should be present.
    mutating func append(_ section: Section, fields: [Field: String]) {
        entities[section, default: []].append(fields)
    }

    mutating func setGlobal(_ global: Global, path: String) {
        globals[global] = path
    }

    /// The key path of a field, falling back to the entity's own path.
    func path(_ section: Section, _ index: Int, _ field: Field) -> String {
        guard let fields = entities[section], fields.indices.contains(index) else { return "" }
        return fields[index][field] ?? fields[index][.entity] ?? ""
    }

    func path(_ global: Global) -> String {
        globals[global] ?? ""
    }

    /// The location of `path`, or of its nearest enclosing key that has one.
    func location(of path: String) -> SourceLocation {
        var current = Substring(path)
        while !current.isEmpty {
            if let location = locations[String(current)] { return location }
            guard let cut = current.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            current = current[..<cut]
        }
        return SourceLocation(file: file)
    }
}
