import Foundation
import Testing
@testable import LoomConfig

@Suite struct ConfigDumpTests {
    static let text = """
        server:
          admin_token: admin-secret-1
          timeouts: {connect: 250ms, idle: 2m}
        admin:
          token: admin-api-secret-2
        upstreams:
          - name: app
            endpoints: ["127.0.0.1:9001", "unix:/run/app.sock"]
        filters:
          - {type: api_key, keys: [api-secret-3]}
          - {type: jwt, secret: "jwt-secret-4 that is long enough, surely"}
          - {type: basic_auth, users: ["bob:{SHA}lW2ZjsFP+nY11L3OFMUH/UdgUQQ="]}
        routes:
          - id: all
            path: /*
            upstream: app
            set_headers: {Authorization: "Bearer header-secret-5", X-Team: blue}
            headers: [{name: X-Internal-Key, value: condition-secret-6}]
        plugins:
          - name: p
            path: p.wasm
            config: {api_key: plugin-secret-7}
            vm_config: vm-secret-8
            environment: {TOKEN: env-secret-9}
        """

    @Test func secretsAreRedactedAndTheRestIsThere() throws {
        let result = TestSupport.yaml(Self.text)
        try #require(!result.hasFatal, "\(result.messages)")
        let json = ConfigDump.json(try #require(result.configuration))
        for secret in ["admin-secret-1", "admin-api-secret-2", "api-secret-3", "jwt-secret-4", "lW2ZjsFP", "header-secret-5",
                       "condition-secret-6", "plugin-secret-7", "vm-secret-8", "env-secret-9"] {
            #expect(!json.contains(secret), "\(secret) shows in \(json)")
        }
        for shown in ["\"X-Internal-Key\"", "p.wasm\"", "\"127.0.0.1:9001\"", "\"unix:/run/app.sock\"", "\"250ms\"", "\"2m\"", "\"X-Team\"", "\"blue\"", "\"bob\"", "\"request_id_header\""] {
            #expect(json.contains(shown), "\(shown) missing from \(json)")
        }
        #expect(try JSONSerialization.jsonObject(with: Data(json.utf8)) is [String: Any])
    }

    @Test func snakeCaseAndDurations() {
        #expect(ConfigDump.snakeCase("requestIDHeader") == "request_id_header")
        #expect(ConfigDump.snakeCase("adminToken") == "admin_token")
        #expect(ConfigDump.snakeCase("maxURIBytes") == "max_uri_bytes")
        #expect(ConfigDump.render(.milliseconds(1500)) == "1500ms")
        #expect(ConfigDump.render(.seconds(90)) == "90s")
        #expect(ConfigDump.render(.seconds(7200)) == "2h")
    }
}
