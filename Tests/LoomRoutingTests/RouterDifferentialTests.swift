import LoomConfig
import LoomTestSupport
import Testing

@testable import LoomRouting

/// The compiled router must answer exactly what the linear reference answers (same route,
/// same parameters, same 405 `Allow`) for any route set. Route sets and requests are drawn from
/// small alphabets so that overlaps, shadowing and ties are common rather than rare.
@Suite struct RouterDifferentialTests {
    static let segments = ["a", "b", "ab", "users", "1"]
    static let ruleHosts: [String?] = [nil, nil, "a.com", "B.com", "*.a.com", "*.x.a.com", "[::1]"]
    static let requestHosts: [String?] = [nil, "a.com", "A.COM:8080", "b.com.", "x.a.com", "y.x.a.com", "x.a.com.:1", "[::1]:80", "", "com"]
    static let methodSets: [[String]?] = [nil, nil, ["GET"], ["POST", "PUT"], ["GET", "DELETE"], ["PROPFIND", "GET"]]
    static let methods = ["GET", "POST", "DELETE", "PATCH", "PROPFIND", "MKCOL"]

    static let regexes = ["^/a/[0-9]+", "/(a|b)/", "/users/.*$", "/ab$", "/"]
    static let headerConditions: [[FieldCondition]] = [
        [], [], [],
        [FieldCondition(name: "X-V", test: .equals("1"))], [FieldCondition(name: "x-v", test: .present)],
        [FieldCondition(name: "X-V", test: .absent)], [FieldCondition(name: "X-V", test: .matches("[0-9]"))],
    ]
    static let queryConditions: [[FieldCondition]] = [
        [], [], [], [FieldCondition(name: "a", test: .equals("1"))], [FieldCondition(name: "b", test: .present)],
    ]
    static let requestHeaders: [[(name: String, value: String)]] = [[], [("X-V", "1")], [("x-v", "22")], [("X-V", "2"), ("X-V", "1")]]
    static let queries: [Substring?] = [nil, "", "a=1", "b", "a=2&b=", "a=%31"]

    static func randomPath(_ rng: inout SplitMix64) -> PathMatch? {
        if Int.random(in: 0..<8, using: &rng) == 0 { return .regex(regexes.randomElement(using: &rng)!) }
        let depth = Int.random(in: 0...3, using: &rng)
        var parts: [String] = []
        var parameters = 0
        for _ in 0..<depth {
            if Int.random(in: 0..<4, using: &rng) == 0 {
                parts.append("{p\(parameters)}")
                parameters += 1
            } else {
                parts.append(segments.randomElement(using: &rng)!)
            }
        }
        let body = "/" + parts.joined(separator: "/")
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return nil
        case 1 where parameters == 0: return .exact(body)
        case 2 where parameters == 0: return .prefix(body)
        case 3 where parameters == 0 && depth > 0: return .prefix(body + "/")
        case 4: return patternMatch(depth == 0 ? "/*" : body + "/*")
        default: return parameters == 0 ? .exact(body) : patternMatch(body)
        }
    }

    static func patternMatch(_ text: String) -> PathMatch {
        guard case .success(let pattern) = PathPattern.parse(text) else { fatalError("generator made a bad pattern \(text)") }
        return .pattern(pattern)
    }

    static func randomRequestPath(_ rng: inout SplitMix64) -> String {
        let depth = Int.random(in: 0...4, using: &rng)
        let parts = (0..<depth).map { _ in Int.random(in: 0..<8, using: &rng) == 0 ? "" : segments.randomElement(using: &rng)! }
        switch Int.random(in: 0..<20, using: &rng) {
        case 0: return "*"
        case 1: return ""
        default: return "/" + parts.joined(separator: "/")
        }
    }

    @Test(arguments: 0..<8)
    func compiledRouterAgreesWithLinearRouter(batch: UInt64) {
        var rng = SplitMix64(state: 0x5EED_0000 &+ batch)
        var lookups = 0
        var outcomes: [String: Int] = [:]
        for _ in 0..<300 {
            let count = Int.random(in: 1...12, using: &rng)
            let routes = (0..<count).map { index in
                RouteConfig(
                    name: "r\(index)", priority: Int.random(in: 0...2, using: &rng),
                    match: RouteMatch(
                        path: Self.randomPath(&rng), host: Self.ruleHosts.randomElement(using: &rng)!,
                        methods: Self.methodSets.randomElement(using: &rng)!,
                        headers: Self.headerConditions.randomElement(using: &rng)!, query: Self.queryConditions.randomElement(using: &rng)!),
                    action: .proxy(upstream: "u"))
            }
            let ordered = LoomConfiguration(origin: .environment, routes: routes).orderedRoutes
            let linear = LinearRouter(orderedRoutes: ordered)
            let compiled = CompiledRouter(orderedRoutes: ordered)
            for _ in 0..<25 {
                let method = Self.methods.randomElement(using: &rng)!
                let host = Self.requestHosts.randomElement(using: &rng)!
                let path = Self.randomRequestPath(&rng)
                let headers = HeaderList(Self.requestHeaders.randomElement(using: &rng)!)
                let query = Self.queries.randomElement(using: &rng)!
                let expected = linear.match(method: method, host: host, path: path, query: query, headers: headers)
                let got = compiled.match(method: method, host: host, path: path, query: query, headers: headers)
                lookups += 1
                switch expected {
                case .matched(_, let captures): outcomes[captures.count > 0 ? "parameters" : "matched", default: 0] += 1
                case .methodNotAllowed: outcomes["405", default: 0] += 1
                case .notFound: outcomes["404", default: 0] += 1
                }
                guard got == expected else {
                    let table = ordered.map { "\($0.name): \($0.match)" }.joined(separator: "\n")
                    Issue.record("\(method) \(host ?? "-") \(path) ?\(query ?? "-") \(headers.fields): compiled \(got), linear \(expected)\nroutes:\n\(table)")
                    return
                }
            }
        }
        #expect(lookups == 300 * 25)
        // The alphabets are small enough that every kind of answer is common.
        #expect(outcomes.values.count == 4 && outcomes.values.allSatisfy { $0 > 30 }, "\(outcomes)")
    }
}
