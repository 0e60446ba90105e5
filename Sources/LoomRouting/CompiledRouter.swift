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
/// is skipped, so first-match order holds across buckets. Routes with a regular-expression path
/// are not in the trie: after the walk, those that could still beat the best are tried in order.
/// Header and query conditions are checked on each candidate (`RouteConditions`). Captures are
/// byte offsets and nodes live in one array: a hit on routes without regular expressions
/// allocates nothing. A miss walks once more to collect the methods for a 405 `Allow`.
///
/// Thread-safety: immutable after init; share it freely.
public struct CompiledRouter: Sendable {
    /// Routes in matching order; outcomes index into this.
    public let routes: [RouteConfig]
    /// Allowed methods per route (nil: any), for the 405 `Allow` and methods outside `KnownMethod`.
    private let methods: [[String]?]
    private let conditions: [RouteConditions]
    /// Routes with a `path_regex`, ascending, with their compiled expression and host rule
    /// (lower-cased; `*.` prefix for a wildcard).
    private let regexRoutes: [(route: Int32, regex: CompiledRegex, host: [UInt8]?)]
    private let storage: Storage

    /// A trie node: plain values only (indices into `Storage`), so walking takes no refcounts.
    struct Node {
        var literals = ByteKeyTables.Table()
        var parameter: Int32 = -1
        /// Routes, ascending, whose pattern ends here, by what may follow: `.end`, `.any`, `.atLeastOne`.
        var exact = RouteList()
        var prefixAny = RouteList()
        var prefixAtLeastOne = RouteList()
        /// Smallest route index in this node's subtree.
        var minRoute = Int32.max
    }

    /// `Storage.routeLists[start ..< start + count]`.
    struct RouteList {
        var start: Int32 = 0
        var count: Int32 = 0
    }

    /// A route as a trie node lists it: with what `offer` needs besides the path, so that
    /// trying a candidate reads one 8-byte entry rather than three arrays indexed by route.
    struct Candidate {
        var route: Int32
        /// `KnownMethod.mask` of the route's methods.
        var methods: UInt16
        /// Whether the route has header or query conditions.
        var conditioned: Bool
    }

    /// `routes` must already be in matching order (`LoomConfiguration.orderedRoutes`).
    public init(orderedRoutes routes: [RouteConfig]) {
        self.routes = routes
        self.methods = routes.map(\.match.methods)
        self.conditions = routes.map { RouteConditions($0.match) }
        var regexRoutes: [(route: Int32, regex: CompiledRegex, host: [UInt8]?)] = []
        var builder = Builder()
        var anyHostRoot: Int32 = -1
        var exactRoots: [String: Int32] = [:]
        var wildcardRoots: [String: Int32] = [:]
        for (index, route) in routes.enumerated() {
            let pattern: PathPattern
            switch route.match.path {
            case nil: pattern = PathPattern(segments: [], tail: .any)
            case .regex(let expression)?:
                let host = route.match.hostRule.map { Array($0.utf8) }
                regexRoutes.append((Int32(index), CompiledRegex(expression, anchoring: .start), host))
                continue
            case let path?:
                guard let segments = path.segmentPattern else { continue }
                pattern = segments
            }
            let root: Int32
            if let host = route.match.hostRule {
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
        self.regexRoutes = regexRoutes
        let conditions = self.conditions
        let candidates = routes.indices.map { index in
            Candidate(route: Int32(index), methods: KnownMethod.mask(routes[index].match.methods), conditioned: !conditions[index].isEmpty)
        }
        storage = builder.freeze(anyHostRoot: anyHostRoot, exactHosts: exactRoots, wildcardHosts: wildcardRoots, candidates: candidates)
    }

    /// Matches a request; `host` is the raw `Host` value (port allowed), `path` excludes the
    /// query, `query` is what follows the `?` (nil without one).
    public func match<Headers: RouteHeaders>(method: String, host: String?, path: String, query: Substring? = nil, headers: Headers) -> RouteOutcome {
        lookup(method: method, host: host, path: path, query: query, headers: headers)
    }

    func lookup<Headers: RouteHeaders>(method: String, host: String?, path: String, query: Substring?, headers: Headers) -> RouteOutcome {
        // The walk itself is not generic and its state is plain values: the headers, query and
        // method string are only reached through this closure (a literal at each call, so its
        // context stays on the stack), for the routes that need them.
        let methodBit = KnownMethod.bit(method)
        var search = Search(methodBit: methodBit, collecting: false)
        walkBuckets(host: host, path: path, &search) { route, question in
            answer(question, route: route, method: method, query: query, headers: headers, allowed: nil)
        }
        if search.best != .max {
            return .matched(Int(search.best), search.bestCaptures)
        }
        var allowed: [String] = []
        search = Search(methodBit: methodBit, collecting: true)
        walkBuckets(host: host, path: path, &search) { route, question in
            answer(question, route: route, method: method, query: query, headers: headers, allowed: &allowed)
        }
        if allowed.isEmpty { return .notFound }
        return .methodNotAllowed(allowed: Array(Set(allowed)).sorted())
    }

    private func answer<Headers: RouteHeaders>(
        _ question: RouteQuestion, route: Int32, method: String, query: Substring?, headers: Headers, allowed: UnsafeMutablePointer<[String]>?
    ) -> Bool {
        switch question {
        case .conditionsHold: return conditions[Int(route)].hold(headers: headers, query: query)
        case .listsMethod: return methods[Int(route)]?.contains(method) == true
        case .recordMethods:
            allowed?.pointee += methods[Int(route)] ?? []
            return true
        }
    }

    /// A request without header or query conditions to check.
    public func match(method: String, host: String?, path: String, query: Substring? = nil) -> RouteOutcome {
        match(method: method, host: host, path: path, query: query, headers: HeaderList())
    }

    /// What the walk asks about a route beyond its path, host and method bits: the cases that
    /// need the request's strings, kept out of its state so that the state holds no references.
    private enum RouteQuestion {
        /// Whether the route's header and query conditions hold.
        case conditionsHold
        /// Whether the route lists the request's method (one outside `KnownMethod`).
        case listsMethod
        /// The 405 pass: note the methods of a route that matches all but the method.
        case recordMethods
    }

    private typealias AskRoute = (Int32, RouteQuestion) -> Bool

    private struct Search {
        /// `KnownMethod.bit(method)`: 0 for a method outside the known set.
        let methodBit: UInt16
        /// The 405 pass: record the methods of routes that match all but the method.
        let collecting: Bool
        var best = Int32.max
        var bestCaptures = PathCaptures()
        var captures = PathCaptures()

        init(methodBit: UInt16, collecting: Bool) {
            self.methodBit = methodBit
            self.collecting = collecting
        }
    }

    private func walkBuckets(host: String?, path: String, _ search: inout Search, _ ask: AskRoute) {
        let storage = storage
        withContiguousUTF8(path) { path in
            guard let host else {
                if storage.anyHostRoot >= 0 { walk(storage.anyHostRoot, 0, path, storage, &search, ask) }
                if !regexRoutes.isEmpty { tryRegexRoutes(path, host: nil, &search, ask) }
                return
            }
            withContiguousUTF8(host) { host in
                let bareRange = Self.bareHostRange(host)
                if let root = storage.lookup(storage.exactHosts, bareRange, of: host) {
                    walk(root, 0, path, storage, &search, ask)
                }
                if !storage.wildcardHosts.isEmpty {
                    // `*.example.com` matches when a label boundary leaves `.example.com`.
                    for dot in bareRange.dropFirst() where host[dot] == UInt8(ascii: ".") {
                        if let root = storage.lookup(storage.wildcardHosts, dot..<bareRange.upperBound, of: host) {
                            walk(root, 0, path, storage, &search, ask)
                        }
                    }
                }
                if storage.anyHostRoot >= 0 { walk(storage.anyHostRoot, 0, path, storage, &search, ask) }
                if !regexRoutes.isEmpty { tryRegexRoutes(path, host: UnsafeBufferPointer(rebasing: host[bareRange]), &search, ask) }
            }
        }
    }

    /// The routes with a `path_regex` that could still beat the best found in the trie, in order.
    private func tryRegexRoutes(_ path: UnsafeBufferPointer<UInt8>, host: UnsafeBufferPointer<UInt8>?, _ search: inout Search, _ ask: AskRoute) {
        guard path.first == UInt8(ascii: "/") else { return }
        // Decoded once, only if some regex route is still in the running.
        var text: String?
        for (route, regex, rule) in regexRoutes {
            guard route < search.best else { return }
            if let rule {
                guard let host, Self.hostMatches(rule, host) else { continue }
            }
            if text == nil { text = String(decoding: path, as: UTF8.self) }
            guard regex.matches(text!) else { continue }
            // No parameters (the trie's may still be in `search.captures`: not this route's).
            search.captures = PathCaptures()
            if offer(storage.candidates[Int(route)], restStart: path.count, &search, ask) { return }
        }
    }

    /// A prepared host rule (`*.suffix` or exact, lower-cased) against a bare request host.
    static func hostMatches(_ rule: [UInt8], _ host: UnsafeBufferPointer<UInt8>) -> Bool {
        func lower(_ byte: UInt8) -> UInt8 { byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte }
        if rule.count >= 2 && rule[0] == UInt8(ascii: "*") && rule[1] == UInt8(ascii: ".") {
            let suffix = rule.dropFirst()
            guard host.count > suffix.count else { return false }
            return zip(host.suffix(suffix.count), suffix).allSatisfy { lower($0) == $1 }
        }
        return host.count == rule.count && zip(host, rule).allSatisfy { lower($0) == $1 }
    }

    /// Visits `node` and its subtree with the request path consumed up to `position` (the index
    /// of the `/` that starts the next segment, or the path's length), leaving `search.captures`
    /// as it found them.
    ///
    /// A loop down the trie that calls itself only where a segment continues both as a literal
    /// child and as the parameter child: most levels have one way on, and a loop keeps the
    /// position and node in registers where a call per level spilled them.
    private func walk(_ start: Int32, _ startPosition: Int, _ path: UnsafeBufferPointer<UInt8>, _ storage: Storage, _ search: inout Search, _ ask: AskRoute) {
        let entryCaptures = search.captures.count
        defer { search.captures.truncate(to: entryCaptures) }
        var index = start
        var position = startPosition
        while true {
            let node = storage.nodes.baseAddress! + Int(index)
            guard node.pointee.minRoute < search.best else { return }
            // A path not starting with "/" ("*", "") has no segments (see `LinearRouter.match`).
            let atEnd = position == path.count || path[position] != UInt8(ascii: "/")
            if atEnd && node.pointee.exact.count > 0 { consider(node.pointee.exact, position, storage, &search, ask) }
            if node.pointee.prefixAny.count > 0 { consider(node.pointee.prefixAny, position, storage, &search, ask) }
            guard !atEnd else { return }
            if node.pointee.prefixAtLeastOne.count > 0 { consider(node.pointee.prefixAtLeastOne, position, storage, &search, ask) }
            let segmentStart = position &+ 1
            var end = segmentStart
            while end < path.count && path[end] != UInt8(ascii: "/") { end &+= 1 }
            let parameter = end > segmentStart ? node.pointee.parameter : -1
            if let literal = storage.lookup(node.pointee.literals, segmentStart..<end, of: path) {
                guard parameter >= 0 else {
                    index = literal
                    position = end
                    continue
                }
                walk(literal, end, path, storage, &search, ask)
            } else if parameter < 0 {
                return
            }
            search.captures.push(start: segmentStart, end: end)
            index = parameter
            position = end
        }
    }

    /// Takes the first route in `candidates` (ascending) that beats the best so far and
    /// matches the rest of the request; in the 405 pass, records the methods of the others.
    private func consider(_ candidates: RouteList, _ position: Int, _ storage: Storage, _ search: inout Search, _ ask: AskRoute) {
        for offset in 0..<Int(candidates.count) {
            let candidate = storage.routeLists[Int(candidates.start) + offset]
            guard candidate.route < search.best else { return }
            if offer(candidate, restStart: position, &search, ask) { return }
        }
    }

    /// Makes `route` (which matched path and host with `search.captures`, the rest of the path
    /// starting at `restStart`, and beats the best so far) the best when its conditions and
    /// method allow; returns whether it did.
    private func offer(_ candidate: Candidate, restStart: Int, _ search: inout Search, _ ask: AskRoute) -> Bool {
        let route = candidate.route
        if candidate.conditioned && !ask(route, .conditionsHold) {
            return false
        }
        let mask = candidate.methods
        let allowed = mask == KnownMethod.any || mask & search.methodBit != 0
            // Methods outside the known set are compared as strings.
            || (search.methodBit == 0 && mask & KnownMethod.other != 0 && ask(route, .listsMethod))
        if allowed {
            search.best = route
            search.bestCaptures = search.captures
            search.bestCaptures.restStart = restStart
            return true
        }
        if search.collecting { _ = ask(route, .recordMethods) }
        return false
    }

    /// The host part of a `Host` value's bytes: without `:port` (`[v6]` kept whole) and
    /// without one trailing dot, as `LinearRouter.stripPort`.
    static func bareHostRange(_ host: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        if host.first == UInt8(ascii: "[") {
            return 0..<(host.firstIndex(of: UInt8(ascii: "]")).map { $0 + 1 } ?? host.count)
        }
        // The port follows the last colon: scan back from the end, a word at a time.
        var end = host.count
        var index = host.count
        if let base = host.baseAddress {
            let colons: UInt64 = 0x3A3A_3A3A_3A3A_3A3A, low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
            while index >= 8 {
                let bytes = UnsafeRawPointer(base + (index &- 8)).loadUnaligned(as: UInt64.self) ^ colons
                // The high bit of each byte that is zero (a colon), exactly (no carries across bytes).
                let zero = ~(((bytes & low7) &+ low7) | bytes | low7)
                if zero != 0 {
                    end = index &- 8 &+ (63 &- zero.leadingZeroBitCount) / 8
                    index = 0
                    break
                }
                index &-= 8
            }
        }
        while index > 0 {
            index &-= 1
            if host[index] == UInt8(ascii: ":") {
                end = index
                break
            }
        }
        if end > 0 && host[end &- 1] == UInt8(ascii: ".") { end &-= 1 }
        return 0..<end
    }

    /// The frozen trie in manually allocated memory: immutable after init, freed with the router.
    /// Plain pointers rather than arrays so that a lookup retains nothing per node visited.
    final class Storage: @unchecked Sendable {
        let nodes: UnsafeMutableBufferPointer<Node>
        let slots: UnsafeMutableBufferPointer<ByteKeyTables.Slot>
        let keyBytes: UnsafeMutableBufferPointer<UInt8>
        /// The candidates of every node's route lists.
        let routeLists: UnsafeMutableBufferPointer<Candidate>
        /// Every route's candidate, by route index (regex routes are tried from here).
        let candidates: UnsafeMutableBufferPointer<Candidate>
        let anyHostRoot: Int32
        let exactHosts: ByteKeyTables.Table
        let wildcardHosts: ByteKeyTables.Table

        init(
            nodes: [Node], tables: ByteKeyTables, routeLists: [Candidate], candidates: [Candidate], anyHostRoot: Int32,
            exactHosts: ByteKeyTables.Table, wildcardHosts: ByteKeyTables.Table
        ) {
            self.nodes = Self.copy(nodes)
            self.slots = Self.copy(tables.slots)
            self.keyBytes = Self.copy(tables.keyBytes)
            self.routeLists = Self.copy(routeLists)
            self.candidates = Self.copy(candidates)
            self.anyHostRoot = anyHostRoot
            self.exactHosts = exactHosts
            self.wildcardHosts = wildcardHosts
        }

        deinit {
            nodes.deallocate()
            slots.deallocate()
            keyBytes.deallocate()
            routeLists.deallocate()
            candidates.deallocate()
        }

        /// The value `table` holds for the key `buffer[range]`.
        func lookup(_ table: ByteKeyTables.Table, _ range: Range<Int>, of buffer: UnsafeBufferPointer<UInt8>) -> Int32? {
            ByteKeyTables.value(in: table, for: UnsafeBufferPointer(rebasing: buffer[range]), slots: slots.baseAddress!, keyBytes: keyBytes.baseAddress!)
        }

        /// At least one element, so every base address is non-nil.
        private static func copy<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
            let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(array.count, 1))
            _ = buffer.initialize(from: array)
            return buffer
        }
    }

    /// Builds the trie with dictionaries and arrays, then freezes it into a `Storage`.
    private struct Builder {
        var nodes: [Node] = []
        var children: [[String: Int32]] = []
        var lists: [(exact: [Int32], any: [Int32], atLeastOne: [Int32])] = []

        mutating func newNode() -> Int32 {
            nodes.append(Node())
            children.append([:])
            lists.append(([], [], []))
            return Int32(nodes.count - 1)
        }

        mutating func insert(_ pattern: PathPattern, route: Int32, at root: Int32) {
            var node = Int(root)
            nodes[node].minRoute = min(nodes[node].minRoute, route)
            for segment in pattern.segments {
                switch segment {
                case .literal(let text):
                    if let child = children[node][text] {
                        node = Int(child)
                    } else {
                        let child = newNode()
                        children[node][text] = child
                        node = Int(child)
                    }
                case .parameter:
                    if nodes[node].parameter < 0 { nodes[node].parameter = newNode() }
                    node = Int(nodes[node].parameter)
                }
                nodes[node].minRoute = min(nodes[node].minRoute, route)
            }
            switch pattern.tail {
            case .end: lists[node].exact.append(route)
            case .any: lists[node].any.append(route)
            case .atLeastOne: lists[node].atLeastOne.append(route)
            }
        }

        func freeze(
            anyHostRoot: Int32, exactHosts: [String: Int32], wildcardHosts: [String: Int32], candidates: [Candidate]
        ) -> Storage {
            var tables = ByteKeyTables()
            var routeLists: [Candidate] = []
            func list(_ routes: [Int32]) -> RouteList {
                defer { routeLists += routes.map { candidates[Int($0)] } }
                return RouteList(start: Int32(routeLists.count), count: Int32(routes.count))
            }
            var frozen = nodes
            for index in frozen.indices {
                frozen[index].literals = tables.add(children[index].map { (Array($0.key.utf8), $0.value) }, foldCase: false)
                frozen[index].exact = list(lists[index].exact)
                frozen[index].prefixAny = list(lists[index].any)
                frozen[index].prefixAtLeastOne = list(lists[index].atLeastOne)
            }
            let exact = tables.add(exactHosts.map { (Array($0.key.utf8), $0.value) }, foldCase: true)
            let wildcard = tables.add(wildcardHosts.map { (Array($0.key.utf8), $0.value) }, foldCase: true)
            return Storage(
                nodes: frozen, tables: tables, routeLists: routeLists, candidates: candidates, anyHostRoot: anyHostRoot,
                exactHosts: exact, wildcardHosts: wildcard)
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
