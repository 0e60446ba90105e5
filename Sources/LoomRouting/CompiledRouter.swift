import LoomConfig

/// The route table as the proxy uses it: compiled once per configuration snapshot into a
/// segment trie per host bucket, answering exactly what `LinearRouter` answers (the
/// differential tests check this) without scanning every route.
///
/// Layout: routes are sorted into buckets by their host rule (one exact host, one
/// `*.suffix`, or none). Each bucket is a trie over path segments: a node has literal children
/// (a `ByteKeyTable` keyed by the segment's bytes), at most one parameter child (parameter
/// names differ per route, positions do not), and the routes whose pattern ends there, split by
/// what may follow (`PathPattern.Tail`). A node also knows the smallest route index in its
/// subtree.
///
/// Lookup walks the request path's segments through every bucket the host selects (its exact
/// bucket, each `*.suffix` bucket it falls in, the host-less bucket), keeping the smallest
/// index of a route that also allows the method; a subtree whose smallest index is not smaller
/// is skipped, so first-match order holds across buckets. Captures are byte offsets and nodes
/// live in one array: a hit allocates nothing. A miss walks once more to collect the methods
/// for a 405 `Allow`, which allocates.
///
/// Thread-safety: immutable after init; share it freely.
public struct CompiledRouter: Sendable {
    /// Routes in matching order; outcomes index into this.
    public let routes: [RouteConfig]
    private let nodes: [Node]
    /// Allowed methods per route (nil: any).
    private let methods: [[String]?]
    /// Root node of the bucket for routes without a host rule, or -1.
    private let anyHostRoot: Int32
    /// Lower-cased host → root node.
    private let exactHosts: ByteKeyTable
    /// Lower-cased `.suffix` (the rule `*.suffix` without its `*`) → root node.
    private let wildcardHosts: ByteKeyTable

    private struct Node: Sendable {
        var literals = ByteKeyTable([], foldCase: false)
        var parameter: Int32 = -1
        /// Route indices, ascending, of patterns ending here with tail `.end`/`.any`/`.atLeastOne`.
        var exact: [Int32] = []
        var prefixAny: [Int32] = []
        var prefixAtLeastOne: [Int32] = []
        /// Smallest route index in this node's subtree.
        var minRoute = Int32.max
    }

    /// `routes` must already be in matching order (`LoomConfiguration.orderedRoutes`).
    /// Routes whose path is a regular expression are left out (validation refuses them).
    public init(orderedRoutes routes: [RouteConfig]) {
        self.routes = routes
        self.methods = routes.map(\.match.methods)
        var builder = Builder()
        var anyHostRoot: Int32 = -1
        var exactRoots: [String: Int32] = [:]
        var wildcardRoots: [String: Int32] = [:]
        for (index, route) in routes.enumerated() {
            let pattern: PathPattern
            switch route.match.path {
            case nil: pattern = PathPattern(segments: [], tail: .any)
            case let path?:
                guard let segments = path.segmentPattern else { continue }
                pattern = segments
            }
            let root: Int32
            if let host = route.match.host.map(Self.preparedHostRule) {
                if host.hasPrefix("*.") {
                    root = wildcardRoots[String(host.dropFirst())] ?? builder.newNode()
                    wildcardRoots[String(host.dropFirst())] = root
                } else {
                    root = exactRoots[host] ?? builder.newNode()
                    exactRoots[host] = root
                }
            } else {
                if anyHostRoot < 0 { anyHostRoot = builder.newNode() }
                root = anyHostRoot
            }
            builder.insert(pattern, route: Int32(index), at: root)
        }
        self.nodes = builder.freeze()
        self.anyHostRoot = anyHostRoot
        self.exactHosts = ByteKeyTable(exactRoots.map { (Array($0.key.utf8), $0.value) }, foldCase: true)
        self.wildcardHosts = ByteKeyTable(wildcardRoots.map { (Array($0.key.utf8), $0.value) }, foldCase: true)
    }

    /// Lower-cased, without a trailing dot: how requests' hosts are compared.
    private static func preparedHostRule(_ host: String) -> String {
        (host.utf8.last == UInt8(ascii: ".") ? String(host.dropLast()) : host).lowercased()
    }

    /// Matches a request; `host` is the raw `Host` value (port allowed), `path` excludes the query.
    public func match(method: String, host: String?, path: String) -> RouteOutcome {
        var search = Search(method: method, collecting: false)
        walkBuckets(host: host, path: path, &search)
        if search.best != .max {
            return .matched(Int(search.best), search.bestCaptures)
        }
        search = Search(method: method, collecting: true)
        walkBuckets(host: host, path: path, &search)
        if search.allowed.isEmpty { return .notFound }
        return .methodNotAllowed(allowed: Array(Set(search.allowed)).sorted())
    }

    private struct Search {
        let method: String
        /// The 405 pass: record the methods of routes that match all but the method.
        let collecting: Bool
        var best = Int32.max
        var bestCaptures = PathCaptures()
        var captures = PathCaptures()
        var allowed: [String] = []
    }

    private func walkBuckets(host: String?, path: String, _ search: inout Search) {
        withContiguousUTF8(path) { path in
            nodes.withUnsafeBufferPointer { nodes in
                if let host {
                    withContiguousUTF8(host) { host in
                        let bare = UnsafeBufferPointer(rebasing: host[Self.bareHostRange(host)])
                        if let root = exactHosts.value(for: bare) {
                            walk(root, 0, path, nodes, &search)
                        }
                        guard !wildcardHosts.isEmpty else { return }
                        // `*.example.com` matches when a label boundary leaves `.example.com`.
                        for dot in bare.indices.dropFirst() where bare[dot] == UInt8(ascii: ".") {
                            if let root = wildcardHosts.value(for: UnsafeBufferPointer(rebasing: bare[dot...])) {
                                walk(root, 0, path, nodes, &search)
                            }
                        }
                    }
                }
                if anyHostRoot >= 0 { walk(anyHostRoot, 0, path, nodes, &search) }
            }
        }
    }

    /// Visits `node` with the request path consumed up to `position` (the index of the `/`
    /// that starts the next segment, or the path's length).
    private func walk(
        _ node: Int32, _ position: Int, _ path: UnsafeBufferPointer<UInt8>, _ nodes: UnsafeBufferPointer<Node>,
        _ search: inout Search
    ) {
        let node = Int(node)
        guard nodes[node].minRoute < search.best else { return }
        // A path not starting with "/" ("*", "") has no segments (see `LinearRouter.match`).
        let atEnd = position == path.count || path[position] != UInt8(ascii: "/")
        if atEnd { consider(nodes[node].exact, position, &search) }
        consider(nodes[node].prefixAny, position, &search)
        guard !atEnd else { return }
        consider(nodes[node].prefixAtLeastOne, position, &search)
        let start = position + 1
        var end = start
        while end < path.count && path[end] != UInt8(ascii: "/") { end += 1 }
        if let child = nodes[node].literals.value(for: UnsafeBufferPointer(rebasing: path[start..<end])) {
            walk(child, end, path, nodes, &search)
        }
        let parameter = nodes[node].parameter
        if parameter >= 0 && end > start {
            search.captures.push(start: start, end: end)
            walk(parameter, end, path, nodes, &search)
            search.captures.pop()
        }
    }

    /// Takes the first route in `candidates` (ascending) that beats the best so far and
    /// allows the method; in the 405 pass, records the methods of the others.
    private func consider(_ candidates: [Int32], _ position: Int, _ search: inout Search) {
        for route in candidates {
            guard route < search.best else { return }
            guard let allowed = methods[Int(route)] else {
                search.best = route
                search.bestCaptures = search.captures
                search.bestCaptures.restStart = position
                return
            }
            if allowed.contains(search.method) {
                search.best = route
                search.bestCaptures = search.captures
                search.bestCaptures.restStart = position
                return
            }
            if search.collecting { search.allowed += allowed }
        }
    }

    /// The host part of a `Host` value's bytes: without `:port` (`[v6]` kept whole) and
    /// without one trailing dot, as `LinearRouter.stripPort`.
    static func bareHostRange(_ host: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        if host.first == UInt8(ascii: "[") {
            return 0..<(host.firstIndex(of: UInt8(ascii: "]")).map { $0 + 1 } ?? host.count)
        }
        var end = host.lastIndex(of: UInt8(ascii: ":")) ?? host.count
        if end > 0 && host[end - 1] == UInt8(ascii: ".") { end -= 1 }
        return 0..<end
    }

    /// Builds the trie with dictionaries, then freezes children into `ByteKeyTable`s.
    private struct Builder {
        var nodes: [Node] = []
        var children: [[String: Int32]] = []

        mutating func newNode() -> Int32 {
            nodes.append(Node())
            children.append([:])
            return Int32(nodes.count - 1)
        }

        mutating func insert(_ pattern: PathPattern, route: Int32, at root: Int32) {
            var node = root
            nodes[Int(node)].minRoute = min(nodes[Int(node)].minRoute, route)
            for segment in pattern.segments {
                switch segment {
                case .literal(let text):
                    if let child = children[Int(node)][text] {
                        node = child
                    } else {
                        let child = newNode()
                        children[Int(node)][text] = child
                        node = child
                    }
                case .parameter:
                    if nodes[Int(node)].parameter < 0 { nodes[Int(node)].parameter = newNode() }
                    node = nodes[Int(node)].parameter
                }
                nodes[Int(node)].minRoute = min(nodes[Int(node)].minRoute, route)
            }
            switch pattern.tail {
            case .end: nodes[Int(node)].exact.append(route)
            case .any: nodes[Int(node)].prefixAny.append(route)
            case .atLeastOne: nodes[Int(node)].prefixAtLeastOne.append(route)
            }
        }

        func freeze() -> [Node] {
            var frozen = nodes
            for index in frozen.indices where !children[index].isEmpty {
                frozen[index].literals = ByteKeyTable(children[index].map { (Array($0.key.utf8), $0.value) }, foldCase: false)
            }
            return frozen
        }
    }
}

/// Runs `body` on the string's UTF-8 bytes in place (native strings are contiguous; others
/// are copied once).
func withContiguousUTF8<R>(_ string: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
    var copy = string
    copy.makeContiguousUTF8()
    return copy.utf8.withContiguousStorageIfAvailable(body)!
}
