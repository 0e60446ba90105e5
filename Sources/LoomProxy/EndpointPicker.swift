import LoomConfig
import LoomHTTP

/// How an upstream chooses the endpoint for a request: the strategy, prepared once per
/// snapshot (the consistent-hash ring is built here), and a pure `pick` that takes the
/// per-loop rotation `State` and random number from its caller, so tests drive it with
/// fixed sequences.
///
/// - `round_robin` (and `weighted`, its other name): each event loop cycles through the
///   endpoints, smoothly weighted when weights differ.
/// - `random`: in proportion to the weights.
/// - `ip_hash`: the client address, as nginx hashes it (an IPv4 address by its first three
///   octets, so a /24 sticks together; IPv6 whole).
/// - `least_conn`: the fewest requests in flight across all event loops (`InFlightCounter`)
///   relative to weight; endpoints tied there take turns (weighted turns when weights differ).
/// - `power_of_two`: of two different endpoints drawn in proportion to weight, the one with
///   fewer in flight relative to weight.
/// - `consistent_hash`: the configured key (client IP, header, cookie, path) on a ring of
///   `pointsPerEndpoint` points per endpoint, placed by a hash of the endpoint's address, so
///   adding or removing one endpoint moves only about 1/n of the keys. A request without the
///   key (no such header or cookie) falls back to round robin.
struct EndpointPicker: Sendable {
    enum Strategy: Sendable, Equatable {
        case roundRobin
        case random
        case ipHash
        case consistentHash(HashKey)
        /// The endpoint with the fewest requests in flight (ties in round-robin order).
        case leastConnections
        /// Of two endpoints drawn at random, the one with fewer requests in flight.
        case powerOfTwo

        /// Whether picks read the endpoints' in-flight counts (which are then kept).
        var countsInFlight: Bool { self == .leastConnections || self == .powerOfTwo }
    }

    let strategy: Strategy
    let endpointCount: Int
    /// Endpoint weights, and their running sums (`cumulative[i]` = weights of 0...i).
    private let weights: [Int]
    private let cumulative: [Int]
    /// All weights equal: plain rotation and modulo instead of the weighted forms.
    private let uniform: Bool
    /// Ring points (ascending) and the endpoint each belongs to, for `consistentHash`.
    private let ringPoints: [UInt64]
    private let ringEndpoints: [Int32]

    static let pointsPerEndpoint = 160
    /// Ring size limit: with large, varied weights each weight unit gets fewer points.
    static let maxRingPoints = 160_000

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// For `loom explain`.
    var strategyDescription: String {
        switch strategy {
        case .roundRobin: "round robin"
        case .random: "random"
        case .ipHash: "ip_hash (this client's address)"
        case .leastConnections: "least_conn (fewest requests in flight)"
        case .powerOfTwo: "power_of_two (the less loaded of two at random)"
        case .consistentHash(let key):
            switch key {
            case .clientIP: "consistent hash of the client address"
            case .path: "consistent hash of the path"
            case .header(let name): "consistent hash of header \(name)"
            case .cookie(let name): "consistent hash of cookie \(name)"
            }
        }
    }

    init(_ upstream: UpstreamConfig) {
        endpointCount = upstream.endpoints.count
        // Validation keeps weights in 1...1000; dividing by their common divisor keeps the
        // ring small (all 1000s are all 1s) and picks identical.
        let given = upstream.weights.map { max($0, 1) }
        let divisor = given.reduce(0, Self.gcd)
        weights = given.map { $0 / max(divisor, 1) }
        var sum = 0
        cumulative = weights.map { weight in
            sum += weight
            return sum
        }
        uniform = Set(weights).count <= 1
        switch upstream.loadBalancing {
        case .random: strategy = .random
        case .ipHash: strategy = .ipHash
        case .consistentHash: strategy = .consistentHash(upstream.hashKey ?? .clientIP)
        case .leastConnections: strategy = .leastConnections
        case .powerOfTwo: strategy = .powerOfTwo
        case .roundRobin, .weighted: strategy = .roundRobin
        }
        guard case .consistentHash = strategy else {
            ringPoints = []
            ringEndpoints = []
            return
        }
        var ring: [(point: UInt64, endpoint: Int32)] = []
        ring.reserveCapacity(endpointCount * Self.pointsPerEndpoint)
        // A heavier endpoint owns proportionally more of the ring, within `maxRingPoints`.
        let perWeight = max(1, min(Self.pointsPerEndpoint, Self.maxRingPoints / max(cumulative.last ?? 1, 1)))
        for (index, endpoint) in upstream.endpoints.enumerated() {
            for replica in 0..<perWeight * weights[index] {
                ring.append((Self.hash("\(endpoint)#\(replica)"), Int32(index)))
            }
        }
        // Ties (vanishingly rare) are broken by endpoint order, so the ring is deterministic.
        ring.sort { ($0.point, $0.endpoint) < ($1.point, $1.endpoint) }
        ringPoints = ring.map(\.point)
        ringEndpoints = ring.map(\.endpoint)
    }

    /// The endpoint index for a request (`path` normalized, `clientIP` the peer's); `cursor` is
    /// this loop's round-robin position for the upstream (advanced when used), `random` a
    /// fresh random number. The request's parts are separate parameters so that picking
    /// copies (and retains) nothing of the head.
    /// `inFlight(i)` is endpoint i's current count (read only by the two strategies that use it).
    /// An event loop's rotation state for one upstream.
    struct State {
        var cursor = 0
        /// Smooth weighted round robin's current weights (nginx's algorithm), when weights differ.
        var current: [Int] = []
    }

    /// `eligible`, when given, limits the choice to the endpoints it accepts (available ones
    /// not tried yet); the caller makes sure at least one is. Each strategy keeps its nature
    /// over the rest: rotation skips, draws are redrawn over the eligible weights, a hash
    /// looks further (ip_hash rehashes as nginx does, the ring walks on to the next eligible
    /// point, so keys of the other endpoints stay where they are).
    func pick(
        _ head: HTTPRequestHead, path: String, clientIP: String?, state: inout State, random: UInt64,
        inFlight: (Int) -> Int = { _ in 0 }, eligible: ((Int) -> Bool)? = nil
    ) -> Int {
        let allowed = eligible ?? { _ in true }
        switch strategy {
        case .leastConnections:
            // The lowest load relative to weight (a/w < b/v as a·v < b·w), then, among the
            // endpoints tied there, the rotation: plain turns, or smooth weighted ones.
            var best = -1
            for index in 0..<endpointCount where allowed(index) {
                if best < 0 || inFlight(index) * weights[best] < inFlight(best) * weights[index] { best = index }
            }
            guard best >= 0 else { return 0 }
            let (load, weight) = (inFlight(best), weights[best])
            let tied = { (index: Int) in allowed(index) && inFlight(index) * weight == load * self.weights[index] }
            return uniform ? nthTied(&state.cursor, tied) : smoothWeighted(&state.current, among: tied)
        case .powerOfTwo:
            // Two different endpoints, each drawn in proportion to weight.
            let first: Int, second: Int
            if let eligible {
                first = weighted(random, among: eligible)
                guard let other = weightedOrNil(random >> 32, among: { $0 != first && eligible($0) }) else { return first }
                second = other
            } else {
                guard endpointCount > 1 else { return 0 }
                first = weighted(random)
                second = weighted(random >> 32, excluding: first)
            }
            return inFlight(second) * weights[first] < inFlight(first) * weights[second] ? second : first
        case .roundRobin:
            return rotate(&state, among: eligible)
        case .random:
            guard let eligible else { return weighted(random) }
            return weighted(random, among: eligible)
        case .ipHash:
            guard let ip = clientIP else { return rotate(&state, among: eligible) }
            let key = Self.ipHashKey(ip)
            let first = weighted(Self.hash(key))
            guard let eligible, !eligible(first) else { return first }
            // nginx: rehash up to 20 times, then round robin.
            for attempt in 1...20 {
                let index = weighted(Self.hash("\(key)#\(attempt)"))
                if eligible(index) { return index }
            }
            return rotate(&state, among: eligible)
        case .consistentHash(let key):
            guard let text = Self.key(key, head: head, path: path, clientIP: clientIP) else { return rotate(&state, among: eligible) }
            return endpoint(onRingFor: Self.hash(text), eligible: eligible)
        }
    }

    /// Round robin (smooth weighted when the weights differ) over the eligible endpoints.
    private func rotate(_ state: inout State, among eligible: ((Int) -> Bool)?) -> Int {
        guard let eligible else { return rotate(&state) }
        return uniform ? nthTied(&state.cursor, eligible) : smoothWeighted(&state.current, among: eligible)
    }

    /// A draw in proportion to weight over the endpoints `among` accepts (at least one).
    private func weighted(_ value: UInt64, among: (Int) -> Bool) -> Int {
        weightedOrNil(value, among: among) ?? 0
    }

    private func weightedOrNil(_ value: UInt64, among: (Int) -> Bool) -> Int? {
        var total = 0
        for index in 0..<endpointCount where among(index) { total += weights[index] }
        guard total > 0 else { return nil }
        var point = Int(value % UInt64(total))
        for index in 0..<endpointCount where among(index) {
            if point < weights[index] { return index }
            point -= weights[index]
        }
        return nil
    }

    /// Round robin, weighted when the weights differ (the fallback of the keyed strategies).
    private func rotate(_ state: inout State) -> Int {
        uniform ? Self.next(&state.cursor, endpointCount) : smoothWeighted(&state.current)
    }

    /// The endpoint owning `value` in the weights' ranges (uniform: plain modulo).
    private func weighted(_ value: UInt64) -> Int {
        if uniform { return Int(value % UInt64(endpointCount)) }
        return owner(of: Int(value % UInt64(cumulative[cumulative.count - 1])))
    }

    /// As `weighted`, over every endpoint but `excluded`.
    private func weighted(_ value: UInt64, excluding excluded: Int) -> Int {
        let total = cumulative[cumulative.count - 1] - weights[excluded]
        var point = Int(value % UInt64(total))
        // Skip the excluded endpoint's range.
        if point >= cumulative[excluded] - weights[excluded] { point += weights[excluded] }
        return owner(of: point)
    }

    /// The index whose range in `cumulative` holds `point`.
    private func owner(of point: Int) -> Int {
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] <= point { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The next of the endpoints `tied` selects, in turn (`cursor` counts the turns).
    private func nthTied(_ cursor: inout Int, _ tied: (Int) -> Bool) -> Int {
        let count = (0..<endpointCount).reduce(0) { $0 + (tied($1) ? 1 : 0) }
        var target = Self.next(&cursor, max(count, 1))
        for index in 0..<endpointCount where tied(index) {
            if target == 0 { return index }
            target -= 1
        }
        return 0
    }

    /// nginx's smooth weighted round robin over the endpoints `among` selects: each gains
    /// its weight, the one with the most is picked and pays their total. Weights 5,1,1 give
    /// a a b a c a a, not a a a a a b c.
    private func smoothWeighted(_ current: inout [Int], among: (Int) -> Bool = { _ in true }) -> Int {
        if current.count != endpointCount { current = Array(repeating: 0, count: endpointCount) }
        var best = -1
        var total = 0
        for index in 0..<endpointCount where among(index) {
            current[index] += weights[index]
            total += weights[index]
            if best < 0 || current[index] > current[best] { best = index }
        }
        guard best >= 0 else { return 0 }
        current[best] -= total
        return best
    }

    /// The endpoint owning the first ring point at or after `point` (wrapping around); with
    /// `eligible`, the first such point whose endpoint it accepts.
    func endpoint(onRingFor point: UInt64, eligible: ((Int) -> Bool)? = nil) -> Int {
        var low = 0
        var high = ringPoints.count
        while low < high {
            let middle = (low + high) / 2
            if ringPoints[middle] < point { low = middle + 1 } else { high = middle }
        }
        let start = low == ringPoints.count ? 0 : low
        guard let eligible else { return Int(ringEndpoints[start]) }
        for step in 0..<ringPoints.count {
            let owner = Int(ringEndpoints[(start + step) % ringPoints.count])
            if eligible(owner) { return owner }
        }
        return Int(ringEndpoints[start])
    }

    private static func next(_ cursor: inout Int, _ count: Int) -> Int {
        defer { cursor &+= 1 }
        return Int(UInt(bitPattern: cursor) % UInt(count))
    }

    /// nginx's `ip_hash` key: the first three octets of an IPv4 address, an IPv6 address whole.
    static func ipHashKey(_ ip: String) -> Substring {
        guard !ip.utf8.contains(UInt8(ascii: ":")), let lastDot = ip.lastIndex(of: ".") else { return Substring(ip) }
        return ip[..<lastDot]
    }

    static func key(_ key: HashKey, head: HTTPRequestHead, path: String, clientIP: String?) -> String? {
        switch key {
        case .clientIP: return clientIP
        case .path: return path
        case .header(let name): return head.headers.firstValue(named: name.lowercased())
        case .cookie(let name): return cookie(name, in: head.headers)
        }
    }

    /// The value of cookie `name` in the request's `Cookie` fields (`a=1; b=2`), or nil.
    static func cookie(_ name: String, in headers: HTTPHeaderBlock) -> String? {
        var found: String?
        _ = headers.containsValue(named: "cookie") { bytes in
            for pair in String(decoding: bytes, as: UTF8.self).split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
                found = String(trimmed[trimmed.index(after: equals)...])
                return true
            }
            return false
        }
        return found
    }

    /// FNV-1a over the bytes, then a 64-bit finalizer (FNV's low bits alone are weak):
    /// stable across processes and restarts, unlike `Hasher`, so keys keep their endpoints.
    static func hash<Text: StringProtocol>(_ text: Text) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash = hash &* 0xc4ce_b9fe_1a85_ec53
        return hash ^ (hash >> 33)
    }
}
