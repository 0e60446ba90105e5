import LoomConfig
import LoomHTTP
import NIOCore

@testable import LoomFilters

/// Requests and responses for filter tests, from raw header text.
enum FilterTest {
    static func request(
        _ method: String = "GET", _ fields: [(String, String)] = [], clientIP: String? = "192.0.2.10", target: String = "/api/x"
    ) -> FilterRequest {
        let text = "\(method) \(target) HTTP/1.1\r\nHost: a\r\n" + fields.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        var buffer = ByteBuffer(string: text)
        var parser = HTTP1HeadParser()
        let head = try! parser.parseRequestHead(&buffer)!
        return FilterRequest(head: head, path: "/api/x", routeName: "r", parameters: [:], clientIP: clientIP, requestID: "id-1")
    }

    static func response(status: Int = 200, hasBody: Bool = true, _ fields: [String: String] = [:]) -> FilterResponse {
        let lowered = Dictionary(uniqueKeysWithValues: fields.map { ($0.key.lowercased(), $0.value) })
        return FilterResponse(status: status, hasBody: hasBody) { lowered[$0] }
    }

    /// The response's changes as `name: value` lines (set, then added), removals as `-name`.
    static func lines(_ changes: HeaderChanges) -> [String] {
        changes.rules.remove.map { "-\($0)" } + (changes.rules.set + changes.rules.add).map { "\($0.name): \($0.value)" }
    }
}
