import Testing

@testable import LoomConfig

/// The `control` section and the endpoint `drain` key, in both dialects.
@Suite struct ControlSettingsTests {
    @Test func aRelativeSocketPathIsTakenFromTheFilesDirectory() throws {
        let yaml = ConfigLoader.load(text: "control:\n  socket: run/loom.sock\n", fileName: "/etc/loom/gw.yaml", dialect: .loomYAML, environment: [:])
        #expect(yaml.configuration?.control == ControlSettings(socket: "/etc/loom/run/loom.sock"))
        let toml = ConfigLoader.load(text: "[control]\nsocket = \"/run/loom.sock\"\n", fileName: "/etc/wd.toml", dialect: .warpDriveTOML, environment: [:])
        #expect(toml.configuration?.control == ControlSettings(socket: "/run/loom.sock"))
        #expect(TestSupport.yaml("routes: []").configuration?.control == nil)
    }

    @Test func badSocketSettingsAreErrors() {
        let long = "/" + String(repeating: "s", count: ControlSettings.maxPathBytes)
        #expect(TestSupport.yaml("control:\n  socket: \(long)\n").messages.contains { $0.contains("control.socket: socket path \"\(long)\" is longer than 107 bytes") })
        #expect(TestSupport.yaml("control:\n  socket: \"\"\n").messages.contains { $0.contains("control.socket: socket path \"\" is empty") })
        #expect(TestSupport.yaml("control: {}\n").messages.contains { $0.contains("control: missing required key \"socket\"") })
        #expect(TestSupport.yaml("control:\n  socket: /s\n  mode: 0666\n").messages.contains { $0.contains("control.mode") })
    }

    @Test func drainedEndpointsLoadFromBothDialects() throws {
        let yaml = try #require(TestSupport.yaml("""
            upstreams:
              - name: app
                endpoints: ["127.0.0.1:1", {address: "127.0.0.1:2", drain: true}]
            """).configuration)
        #expect(yaml.upstreams.first?.draining == [false, true])
        let toml = try #require(TestSupport.toml("""
            [[upstreams.app.instances]]
            host = "127.0.0.1"
            port = 1
            [[upstreams.app.instances]]
            host = "127.0.0.1"
            port = 2
            drain = true
            """).configuration)
        #expect(toml.upstreams.first?.draining == [false, true])
        #expect(TestSupport.yaml("upstreams:\n  - name: app\n    endpoints: [{address: \"127.0.0.1:2\", drain: 1}]\n").messages.contains { $0.contains("drain") })
    }

    @Test func anUpstreamWithEveryEndpointDrainedIsAWarning() {
        let result = TestSupport.yaml("""
            upstreams:
              - name: app
                endpoints: [{address: "127.0.0.1:2", drain: true}]
            routes:
              - {id: a, path: /, upstream: app}
            """)
        #expect(result.configuration != nil)
        #expect(result.diagnostics.contains { $0.severity == .warning && $0.message.contains("drain") }, "\(result.messages)")
    }
}
