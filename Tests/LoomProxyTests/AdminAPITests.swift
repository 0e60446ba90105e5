import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// The admin API over real HTTP against a running engine and real backends.
    @Suite struct AdminAPITests {
        static let token = "admin-test-token-1234"

        /// An admin answer: status, fields and body.
        struct Answer {
            var status: Int
            var response: RawResponse
            var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:] }
            var text: String { response.bodyText }
        }

        static func call(_ fixture: ReloadFixture, _ target: String, method: String = "GET", token: String? = Self.token) throws -> Answer {
            let port = try #require(fixture.admin?.address?.port)
            let client = try RawClient(port: port)
            let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
            try client.send("\(method) \(target) HTTP/1.1\r\nHost: admin\r\n\(authorization)Content-Length: 0\r\nConnection: close\r\n\r\n")
            let response = try client.readResponse(headRequest: method == "HEAD")
            return Answer(status: response.status, response: response)
        }

        /// A fixture with an admin API (port chosen free), one route and one upstream.
        static func withAdmin(extra: String = "", routes: String? = nil, _ body: (ReloadFixture) async throws -> Void) async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                let adminPort = try E2E.closedPort()
                let admin = "admin:\n  address: \"127.0.0.1:\(adminPort)\"\n  token: \(Self.token)\n" + extra
                let upstreams = fixture.appUpstream + "    health_check: {path: /health, interval: 50ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1}\n"
                try fixture.write(admin + fixture.yaml(routes: routes ?? "  - id: all\n    path: /*\n    upstream: app\n", upstreams: upstreams))
                try await fixture.start()
                try await body(fixture)
            }
        }

        @Test func probesNeedNoTokenAndTheRestDoes() async throws {
            try await Self.withAdmin { fixture in
                #expect(try Self.call(fixture, "/health", token: nil).json["status"] as? String == "ok")
                #expect(try Self.call(fixture, "/ready", token: nil).json["ready"] as? Bool == true)
                for path in ["/info", "/routes", "/upstreams", "/plugins", "/config", "/metrics"] {
                    let refused = try Self.call(fixture, path, token: nil)
                    #expect(refused.status == 401, "\(path)")
                    #expect(refused.response.header("www-authenticate")?.hasPrefix("Bearer") == true)
                    #expect(try Self.call(fixture, path, token: "wrong-token").status == 401, "\(path)")
                    #expect(try Self.call(fixture, path).status == 200, "\(path)")
                }
            }
        }

        @Test func aReloadChangesTheTokenButCannotTakeItAway() async throws {
            try await Self.withAdmin { fixture in
                let text = try String(contentsOfFile: fixture.path, encoding: .utf8)
                try text.replacingOccurrences(of: Self.token, with: "rotated-token-5678").write(toFile: fixture.path, atomically: true, encoding: .utf8)
                #expect(try Self.call(fixture, "/config/reload", method: "POST").json["status"] as? String == "applied")
                #expect(try Self.call(fixture, "/info").status == 401)
                #expect(try Self.call(fixture, "/info", token: "rotated-token-5678").status == 200)
                // Without a token in the file, the listener keeps wanting the one it started with.
                try text.replacingOccurrences(of: "  token: \(Self.token)\n", with: "").write(toFile: fixture.path, atomically: true, encoding: .utf8)
                #expect(try Self.call(fixture, "/config/reload", method: "POST", token: "rotated-token-5678").json["status"] as? String == "applied")
                #expect(try Self.call(fixture, "/info", token: nil).status == 401)
                #expect(try Self.call(fixture, "/info").status == 200)
            }
        }

        @Test func unknownPathsAndWrongMethods() async throws {
            try await Self.withAdmin { fixture in
                #expect(try Self.call(fixture, "/nope").status == 404)
                let wrong = try Self.call(fixture, "/routes", method: "POST")
                #expect(wrong.status == 405)
                #expect(wrong.response.header("allow") == "GET")
                #expect(try Self.call(fixture, "/config/reload", method: "GET").response.header("allow") == "POST")
                #expect(try Self.call(fixture, "/health", method: "HEAD", token: nil).status == 200)
            }
        }

        @Test func infoRoutesUpstreamsAndConfig() async throws {
            try await Self.withAdmin { fixture in
                let info = try Self.call(fixture, "/info").json
                #expect(info["version"] as? String == LoomVersion.current)
                #expect(info["config_generation"] as? Int == 1)
                #expect(info["config_source"] as? String == fixture.path)
                #expect(info["worker_threads"] as? Int == 2)

                let routes = try #require(try Self.call(fixture, "/routes").json["routes"] as? [[String: Any]])
                #expect(routes.map { $0["name"] as? String } == ["all"])
                #expect(routes.first?["upstream"] as? String == "app")
                #expect(routes.first?["action"] as? String == "proxy")

                #expect(await E2E.eventually { (try? fixture.get("/echo").status) == 200 })
                let upstreams = try #require(try Self.call(fixture, "/upstreams").json["upstreams"] as? [[String: Any]])
                let endpoint = try #require((upstreams.first?["endpoints"] as? [[String: Any]])?.first)
                #expect(endpoint["address"] as? String == "127.0.0.1:\(fixture.backends[0].port)")
                #expect(endpoint["health_check"] as? String == "passing")
                #expect(endpoint["available"] as? Bool == true)
                #expect(endpoint["circuit"] as? String == "none")
                #expect(endpoint["in_flight"] as? Int == 0)

                let config = try Self.call(fixture, "/config")
                #expect(!config.text.contains(Self.token))
                #expect(config.text.contains("<redacted>"))
                #expect((config.json["config"] as? [String: Any])?["routes"] != nil)
            }
        }

        @Test func readyFollowsEndpointHealthWhenAsked() async throws {
            try await Self.withAdmin(extra: "  ready_requires_healthy: true\n") { fixture in
                #expect(await E2E.eventually { (try? Self.call(fixture, "/ready", token: nil).status) == 200 })
                fixture.backends[0].healthStatus.withLockedValue { $0 = 503 }
                #expect(await E2E.eventually { (try? Self.call(fixture, "/ready", token: nil).status) == 503 })
                let reasons = try Self.call(fixture, "/ready", token: nil).json["reasons"] as? [String]
                #expect(reasons == ["upstream \"app\" has no available endpoint"])
            }
        }

        @Test func reloadThroughTheAdminAPI() async throws {
            try await Self.withAdmin { fixture in
                #expect(try Self.call(fixture, "/config/reload", method: "POST").json["status"] as? String == "unchanged")
                let text = try String(contentsOfFile: fixture.path, encoding: .utf8)
                try (text + "  - id: extra\n    path: /extra\n    upstream: app\n").write(toFile: fixture.path, atomically: true, encoding: .utf8)
                let applied = try Self.call(fixture, "/config/reload", method: "POST").json
                #expect(applied["status"] as? String == "applied")
                #expect(applied["generation"] as? Int == 2)
                #expect(applied["changes"] as? [String] == ["add route \"extra\""])
                try "routes: [".write(toFile: fixture.path, atomically: true, encoding: .utf8)
                let rejected = try Self.call(fixture, "/config/reload", method: "POST")
                #expect(rejected.status == 422)
                #expect((rejected.json["errors"] as? [String])?.isEmpty == false)
                #expect(try Self.call(fixture, "/info").json["config_generation"] as? Int == 2)
            }
        }

        /// A plugin's usage and the metrics it defines, in `/metrics` (the C test plugin counts
        /// requests in `c_requests_total`; `/trap` makes it trap). Metrics live per plugin
        /// name for the process, hence a name of this test's own.
        @Test func pluginMetricsAreExported() async throws {
            let module = try PluginFixtures.path("headers")
            let extra = "plugins: [{name: metered, path: \"\(module)\"}]\n"
            let routes = "  - id: all\n    path: /*\n    upstream: app\n    plugins: [metered]\n"
            try await Self.withAdmin(extra: extra, routes: routes) { fixture in
                for _ in 0..<3 { #expect(try fixture.get("/echo").status == 200) }
                #expect(try fixture.get("/trap").status == 500)
                let text = try Self.call(fixture, "/metrics").text
                #expect(text.contains(#"loom_plugin_counter_total{plugin="metered",metric="c_requests_total"} 4"#), "\(text)")
                #expect(text.contains(#"loom_plugin_failures_total{plugin="metered"} 1"#))
                let calls = text.split(separator: "\n").first { $0.hasPrefix(#"loom_plugin_calls_total{plugin="metered"}"#) }
                #expect(calls.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 >= 4 } == true, "\(String(describing: calls))")
            }
        }

        @Test func metricsCountRequestsAndPassPromtool() async throws {
            try await Self.withAdmin { fixture in
                for _ in 0..<3 { #expect(try fixture.get("/echo").status == 200) }
                #expect(try fixture.get("/status?code=404").status == 404)
                _ = try Self.call(fixture, "/config/reload", method: "POST")
                let text = try Self.call(fixture, "/metrics").text
                #expect(text.contains(#"loom_requests_total{route="all",method="GET",status_class="2xx"} 3"#), "\(text)")
                #expect(text.contains(#"loom_requests_total{route="all",method="GET",status_class="4xx"} 1"#))
                #expect(text.contains(#"loom_request_duration_seconds_count{route="all"} 4"#))
                #expect(text.contains(#"loom_upstream_request_duration_seconds_count{upstream="app"} 4"#))
                #expect(text.contains(#"loom_config_reloads_total{result="unchanged"} 1"#))
                #expect(text.contains(#"loom_upstream_health{upstream="app",endpoint="127.0.0.1:\#(fixture.backends[0].port)"} 1"#))
                #expect(text.contains("# HELP loom_requests_total"))
                // promtool (Debian package `prometheus`) lints the exposition.
                let file = try temporaryFile(named: "metrics.txt", text)
                let check = try E2E.run("/bin/sh", ["-c", "/usr/bin/promtool check metrics < '\(file)'"])
                #expect(check.status == 0, "promtool: \(String(decoding: check.stdout, as: UTF8.self)) \(check.stderr)")
            }
        }
    }
}

extension ProxyE2E {
    /// docs/admin-api.openapi.json describes the running API: the same endpoints, and every
    /// JSON answer valid against its documented schema.
    @Suite struct AdminOpenAPITests {
        static var document: [String: Any] {
            get throws {
                let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/admin-api.openapi.json")
                return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            }
        }

        @Test func theDocumentListsExactlyTheEndpoints() throws {
            let paths = try #require(try Self.document["paths"] as? [String: [String: Any]])
            let documented = Set(paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } })
            #expect(documented == Set(AdminAPI.endpoints.map { "\($0.method) \($0.path)" }))
        }

        @Test func answersMatchTheirSchemas() async throws {
            let document = try Self.document
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
            let module = try PluginFixtures.path("headers")
            try await AdminAPITests.withAdmin(
                extra: "", routes: "  - id: all\n    path: /*\n    upstream: app\n    plugins: [h]\n    description: everything\n"
            ) { fixture in
                // With a plugin, so /plugins has an entry to check.
                let text = try String(contentsOfFile: fixture.path, encoding: .utf8)
                try ("plugins:\n  - name: h\n    path: \(module)\n" + text).write(toFile: fixture.path, atomically: true, encoding: .utf8)
                for (method, path) in AdminAPI.endpoints where path != "/metrics" {
                    let answer = try AdminAPITests.call(fixture, path, method: method)
                    let operation = try #require(paths[path]?[method.lowercased()] as? [String: Any])
                    let response = try #require((operation["responses"] as? [String: Any])?["\(answer.status)"] as? [String: Any], "\(method) \(path): \(answer.status) is not documented")
                    let schema = try #require(((response["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any])
                    let json = try JSONSerialization.jsonObject(with: Data(answer.response.body))
                    let problems = Self.violations(json, schema, schemas, at: "\(method) \(path)")
                    #expect(problems.isEmpty, "\(problems)")
                }
                // The reload above applied the plugin: /plugins lists it.
                #expect((try AdminAPITests.call(fixture, "/plugins").json["plugins"] as? [[String: Any]])?.count == 1)
            }
        }

        @Test func theValidatorCatchesAMismatch() {
            let schema: [String: Any] = ["type": "object", "required": ["a"], "properties": ["a": ["type": "integer"], "b": ["type": "array", "items": ["type": "string"]]]]
            #expect(Self.violations(["a": 1, "b": ["x"]], schema, [:], at: "v").isEmpty)
            #expect(Self.violations(["b": [1]], schema, [:], at: "v") == ["v: missing a", "v.b[0]: expected string"])
            #expect(Self.violations(["a": true], schema, [:], at: "v") == ["v.a: expected integer"])
        }

        /// What in `value` the (OpenAPI subset of) JSON `schema` does not allow: types,
        /// required fields, properties, items, enums and `$ref`s into `schemas`.
        static func violations(_ value: Any, _ schema: [String: Any], _ schemas: [String: Any], at path: String) -> [String] {
            if let reference = schema["$ref"] as? String {
                guard let target = schemas[String(reference.split(separator: "/").last ?? "")] as? [String: Any] else { return ["\(path): unknown \(reference)"] }
                return violations(value, target, schemas, at: path)
            }
            var problems: [String] = []
            if let type = schema["type"] as? String, !Self.value(value, is: type) { return ["\(path): expected \(type)"] }
            if let allowed = schema["enum"] as? [String], let text = value as? String, !allowed.contains(text) {
                problems.append("\(path): \(text) is not one of \(allowed)")
            }
            if let object = value as? [String: Any] {
                for key in schema["required"] as? [String] ?? [] where object[key] == nil { problems.append("\(path): missing \(key)") }
                for (key, property) in schema["properties"] as? [String: [String: Any]] ?? [:] {
                    if let field = object[key] { problems += violations(field, property, schemas, at: "\(path).\(key)") }
                }
            }
            if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
                for (index, item) in array.enumerated() { problems += violations(item, items, schemas, at: "\(path)[\(index)]") }
            }
            return problems
        }

        static func value(_ value: Any, is type: String) -> Bool {
            // Foundation on Linux hands JSON numbers and booleans over as NSNumber: the type
            // encoding tells them apart ("c" for a boolean).
            let encoding = (value as? NSNumber).map { String(cString: $0.objCType) }
            switch type {
            case "object": return value is [String: Any]
            case "array": return value is [Any]
            case "string": return value is String
            case "boolean": return encoding == "c"
            case "integer": return encoding.map { $0 != "c" && $0 != "d" && $0 != "f" } ?? false
            case "number": return encoding.map { $0 != "c" } ?? false
            default: return true
            }
        }
    }
}
