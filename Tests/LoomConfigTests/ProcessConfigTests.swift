import LoomSupervision
import Testing

@testable import LoomConfig

/// An upstream's `process` section in both dialects: WarpDrive's `command`, `args` and `env`,
/// loom's supervision keys, and a specific error for each mistake.
@Suite struct ProcessConfigTests {
    static let policy = SupervisedProcess.Policy(
        restart: .onFailure, backoffInitialMillis: 250, backoffMaximumMillis: 8_000, crashLoopRestarts: 3,
        crashLoopWindowMillis: 30_000, readyTimeoutMillis: 5_000, stopTimeoutMillis: 2_000)

    static let expected = ProcessSettings(
        command: "bundle", args: ["exec", "puma"], environment: [HeaderPair(name: "RAILS_ENV", value: "production")],
        workingDirectory: "/srv/app", stopSignal: .quit, policy: policy, dependsOn: ["db"])

    static func errors(_ result: ConfigLoadResult) -> [String] {
        result.diagnostics.filter { $0.severity == .error }.map(\.description)
    }

    @Test func yamlTakesEveryKey() throws {
        let result = TestSupport.yaml("""
            upstreams:
              - name: db
                endpoints: ["unix:/tmp/db.sock"]
                process: {command: db-server}
              - name: app
                endpoints: ["unix:/tmp/puma.sock"]
                process:
                  command: bundle
                  args: [exec, puma]
                  env: {RAILS_ENV: production}
                  working_dir: /srv/app
                  stop_signal: SIGQUIT
                  stop_timeout: 2s
                  restart: on-failure
                  backoff: 250ms
                  backoff_max: 8s
                  max_restarts: 3
                  restart_window: 30s
                  ready_timeout: 5s
                  depends_on: [db]
            """)
        #expect(Self.errors(result) == [])
        let config = try #require(result.configuration)
        #expect(config.upstreams[1].process == Self.expected)
        #expect(config.upstreams[0].process == ProcessSettings(command: "db-server"), "defaults")
    }

    @Test func tomlTakesTheSameKeysWithItsDurationSuffixes() throws {
        let result = TestSupport.toml("""
            [upstreams.db]
            socket = "/tmp/db.sock"
            process.command = "db-server"

            [upstreams.app]
            socket = "/tmp/puma.sock"
            process.command = "bundle"
            process.args = ["exec", "puma"]
            process.env = { RAILS_ENV = "production" }
            process.working_dir = "/srv/app"
            process.stop_signal = "quit"
            process.stop_timeout_secs = 2
            process.restart = "on-failure"
            process.backoff_ms = 250
            process.backoff_max_ms = 8000
            process.max_restarts = 3
            process.restart_window_secs = 30
            process.ready_timeout_secs = 5
            process.depends_on = ["db"]
            """)
        #expect(Self.errors(result) == [])
        let config = try #require(result.configuration)
        #expect(config.upstreams.first { $0.name == "app" }?.process == Self.expected)
    }

    @Test func mistakesAreNamed() {
        let result = TestSupport.yaml("""
            upstreams:
              - name: a
                endpoints: ["127.0.0.1:1"]
                process: {command: "", stop_signal: STOP, restart: sometimes, env: {"A=B": x}, backoff: 2s, backoff_max: 1s, colour: red}
            """)
        #expect(Self.errors(result) == [
            "t.yaml:4:24 upstreams[0].process.command: the command must not be empty",
            "t.yaml:4:41 upstreams[0].process.stop_signal: unknown signal \"STOP\" (use one of TERM, INT, QUIT, HUP, USR1, USR2, KILL)",
            "t.yaml:4:56 upstreams[0].process.restart: unknown value \"sometimes\" (expected one of: always, on-failure, never)",
            "t.yaml:4:73 upstreams[0].process.env.A=B: invalid environment variable name \"A=B\"",
            "t.yaml:4:110 upstreams[0].process.backoff_max: backoff_max must be at least backoff",
            "t.yaml:4:114 upstreams[0].process.colour: unknown key \"colour\"",
        ])
    }

    @Test func dependenciesMustBeSupervisedAndAcyclic() {
        let unknown = TestSupport.yaml("""
            upstreams:
              - {name: a, endpoints: ["127.0.0.1:1"], process: {command: x, depends_on: [b]}}
              - {name: b, endpoints: ["127.0.0.1:2"]}
            """)
        #expect(Self.errors(unknown).map { $0.split(separator: " ", maxSplits: 1)[1] } == [
            "upstreams[0].process: process \"a\" depends on \"b\", which is not a supervised process",
        ])
        let cycle = TestSupport.toml("""
            [upstreams.a]
            socket = "/tmp/a.sock"
            process = { command = "x", depends_on = ["b"] }
            [upstreams.b]
            socket = "/tmp/b.sock"
            process = { command = "y", depends_on = ["a"] }
            """)
        #expect(Self.errors(cycle).map { $0.split(separator: " ", maxSplits: 1)[1] } == [
            "upstreams.a.process: processes depend on each other in a cycle: \"a\" → \"b\" → \"a\"",
        ])
    }
}
