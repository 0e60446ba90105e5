import Testing

@testable import LoomProxy

/// Parsing control-socket request lines (the schema in docs/control-socket.md).
@Suite struct ControlRequestTests {
    static func parse(_ line: String) -> (ControlID?, String) {
        switch ControlRequest.parse(line) {
        case .success(let request): (request.id, "\(request.command)")
        case .failure(let error): (error.id, "error: \(error.message)")
        }
    }

    @Test func everyCommandParses() {
        let lines: [(String, String)] = [
            (#"{"command": "status"}"#, "status"),
            (#"{"version": 1, "command": "list_routes"}"#, "listRoutes"),
            (#"{"command": "list_upstreams"}"#, "listUpstreams"),
            (#"{"command": "list_endpoints", "upstream": "app"}"#, #"listEndpoints(upstream: "app")"#),
            (#"{"command": "list_processes"}"#, "listProcesses"),
            (#"{"command": "restart_process", "name": "app"}"#, #"restartProcess(name: "app")"#),
            (#"{"command": "add_route", "route": {"id": "b", "path": "/b"}, "position": 2}"#, #"edit(add route "b")"#),
            (#"{"command": "remove_route", "name": "b"}"#, #"edit(remove route "b")"#),
            (#"{"command": "add_upstream", "upstream": {"name": "u", "endpoints": ["127.0.0.1:1"]}}"#, #"edit(add upstream "u")"#),
            (#"{"command": "remove_upstream", "name": "u"}"#, #"edit(remove upstream "u")"#),
            (#"{"command": "add_endpoint", "upstream": "u", "address": "127.0.0.1:2", "weight": 3, "backup": true}"#, #"edit(add endpoint 127.0.0.1:2 to upstream "u")"#),
            (#"{"command": "remove_endpoint", "upstream": "u", "address": "127.0.0.1:2"}"#, #"edit(remove endpoint 127.0.0.1:2 of upstream "u")"#),
            (#"{"command": "drain_endpoint", "upstream": "u", "address": "127.0.0.1:2"}"#, #"edit(drain endpoint 127.0.0.1:2 of upstream "u")"#),
            (#"{"command": "undrain_endpoint", "upstream": "u", "address": "127.0.0.1:2"}"#, #"edit(undrain endpoint 127.0.0.1:2 of upstream "u")"#),
            (#"{"command": "set_weight", "upstream": "u", "address": "127.0.0.1:2", "weight": 7}"#, #"edit(set the weight of endpoint 127.0.0.1:2 of upstream "u" to 7)"#),
            (#"{"command": "reload"}"#, "reload"),
            (#"{"command": "dump"}"#, "dump"),
            (#"{"command": "save"}"#, "save(path: nil)"),
            (#"{"command": "save", "path": "/etc/loom/gw.yaml"}"#, #"save(path: Optional("/etc/loom/gw.yaml"))"#),
        ]
        for (line, expected) in lines { #expect(Self.parse(line).1 == expected, "\(line)") }
        let covered = lines.map { String($0.0.components(separatedBy: #""command": ""#)[1].prefix { $0 != "\"" }) }
        #expect(Set(covered) == Set(ControlCommand.signatures.map(\.name)))
    }

    @Test func idsKeepTheirTypeEvenWhenTheRestIsWrong() {
        #expect(Self.parse(#"{"id": "x", "command": "status"}"#).0 == .string("x"))
        #expect(Self.parse(#"{"id": 9, "command": "nope"}"#).0 == .integer(9))
        #expect(Self.parse(#"{"id": [1], "command": "status"}"#) == (nil, #"error: "id" must be a string or an integer"#))
    }

    @Test func argumentsAreCheckedStrictly() {
        let cases: [(String, String)] = [
            (#"{"version": "1", "command": "status"}"#, #""version" must be an integer"#),
            (#"{"command": "add_endpoint", "upstream": "u", "address": "a:1", "weight": 0}"#, #""weight" must be an integer in 1...1000"#),
            (#"{"command": "add_endpoint", "upstream": "u", "address": "a:1", "backup": "yes"}"#, #""backup" must be true or false"#),
            (#"{"command": "add_route", "route": {"id": "b"}, "position": -1}"#, #""position" must be an integer in 0..."#),
            (#"{"command": "set_weight", "upstream": "u", "address": "a:1"}"#, #"set_weight needs "weight""#),
            (#"{"command": "list_endpoints", "upstream": ""}"#, #""upstream" must be a non-empty string"#),
            (#"{"command": "dump", "upstream": "u"}"#, #"dump does not take "upstream""#),
            (#"{"command": "drain", "upstream": "u"}"#, #"unknown command "drain""#),
        ]
        for (line, expected) in cases {
            let (_, message) = Self.parse(line)
            #expect(message.hasPrefix("error: ") && message.contains(expected), "\(line) → \(message)")
        }
    }
}
