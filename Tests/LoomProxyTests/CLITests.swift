import Foundation
import Testing

/// The `loom` binary as a user runs it: `version`, `--help`, `validate`, and `run` with each
/// configuration source (simple mode, Loom YAML, WarpDrive TOML, `LOOM_CONFIG`).
@Suite(.serialized) struct CLITests {
    @Test func versionAndHelp() throws {
        let version = try LoomProcess.run(["version"])
        #expect(version.status == 0)
        #expect(version.stdout.hasPrefix("loom "))

        let help = try LoomProcess.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("Examples:"))
        #expect(help.stdout.contains("validate"))
        #expect(help.stdout.contains("WARPDRIVE_TARGET_HOST"))
    }

    @Test func validateAcceptsTheExamples() throws {
        for example in ["examples/gateway.yaml", "examples/warpdrive.toml"] {
            let result = try LoomProcess.run(["validate", example])
            #expect(result.status == 0, "\(example): \(result.stdout)")
            #expect(result.stdout.contains("\(example): OK"))
        }
    }

    @Test func validatePrintsEveryProblemWithPositionAndExitsNonZero() throws {
        let path = try temporaryFile(named: "gateway.yaml", """
            upstreams:
              - name: backend
                endpoints: ["127.0.0.1:3000"]
            routes:
              - id: a
                path: /x
                upstream: bakend
                timeouts: {connect: 3x}
                bogus: 1
            """)
        let result = try LoomProcess.run(["validate", path])
        #expect(result.status != 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(path):7:5 routes[0].upstream: unknown upstream \"bakend\" (did you mean \"backend\"?)"))
        #expect(lines.contains { $0.hasPrefix("\(path):8:") && $0.contains("routes[0].timeouts.connect") && $0.contains("\"3x\"") })
        #expect(lines.contains { $0.hasPrefix("\(path):9:5 routes[0].bogus:") && $0.contains("unknown key") })
        #expect(lines.last == "\(path): 3 errors")
    }

    /// The issue's example command, and the exit status: 0 routed, 1 answered by loom itself.
    @Test func explainPrintsTheRouteAndExitsByOutcome() throws {
        let path = try temporaryFile(named: "gateway.yaml", """
            upstreams: [{name: api, endpoints: ["127.0.0.1:3000"]}]
            routes:
              - {id: v2, path: "/users/{id}", headers: [{name: X-API-Version, value: v2}], upstream: api}
            """)
        let routed = try LoomProcess.run(["explain", "--config", path, "GET", "https://api.example.com/users/42", "-H", "X-API-Version: v2"])
        #expect(routed.status == 0, "\(routed.stderr)")
        #expect(routed.stdout.contains("matched route \"v2\"\nparameters: id=\"42\""))
        let refused = try LoomProcess.run(["explain", "--config", path, "GET", "https://api.example.com/users/42"])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("1. v2: no, header X-API-Version must be \"v2\"; the request has none"))
        let broken = try LoomProcess.run(["explain", "--config", path, "GET", "ftp://x"])
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("is not an http(s) URL"))
        let badConfig = try temporaryFile(named: "bad.yaml", "routes: [{id: a, upstream: nowhere}]\n")
        let invalid = try LoomProcess.run(["explain", "--config", badConfig, "GET", "http://a/"])
        #expect(invalid.status == 2)
        #expect(invalid.stdout.contains("unknown upstream \"nowhere\""))
    }

    @Test func validateReportsUnreadableFiles() throws {
        let result = try LoomProcess.run(["validate", "/nonexistent/loom.yaml"])
        #expect(result.status != 0)
        #expect(result.stdout.contains("/nonexistent/loom.yaml"))
    }

    @Test func runRefusesUnsupportedFeaturesInsteadOfIgnoringThem() throws {
        let path = try temporaryFile(named: "http3.yaml", """
            listeners:
              - name: http3
                address: "127.0.0.1:9090"
                protocol: http3
            """)
        let result = try LoomProcess.run(["run", "--config", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("not supported yet"))
        #expect(result.stderr.contains("refusing to start"))
    }

    @Test func validateReadsCertificateFiles() throws {
        let path = try temporaryFile(named: "tls.yaml", """
            listeners:
              - name: https
                address: "127.0.0.1:8443"
                protocol: https
                tls: {cert_file: /nonexistent/x.pem, key_file: /nonexistent/x.key}
            """)
        let result = try LoomProcess.run(["validate", path])
        #expect(result.status != 0)
        #expect(result.stdout.contains("listeners[0].tls: listener \"https\": cert_file /nonexistent/x.pem: cannot be read"), "\(result.stdout)")
    }

    @Test func runWithoutAnyConfigurationExplainsTheOptions() throws {
        let result = try LoomProcess.run([])
        #expect(result.status != 0)
        #expect(result.stderr.contains("LOOM_CONFIG"))
    }

    @Test func simpleModeProxiesEverythingToTheTarget() async throws {
        try await withBackend { backendPort in
            let port = freeLoopbackPort()
            let loom = try LoomProcess([], environment: [
                "WARPDRIVE_TARGET_HOST": "127.0.0.1", "WARPDRIVE_TARGET_PORT": String(backendPort),
                "WARPDRIVE_HTTP_PORT": String(port),
            ])
            defer { loom.signal(SIGKILL) }
            #expect(try loom.waitUntilListening() == port)
            let response = try RawClient(port: port).sendAndRead("GET /echo/anything?x=1 HTTP/1.1\r\nHost: app\r\n\r\n")
            #expect(response.status == 200)
            #expect(try EchoedRequest(response).uri == "/echo/anything?x=1")
            // Access log: one JSON line per request on stdout.
            let line = try #require(loom.stdoutLines(waitingFor: 1).first)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(record["status"] as? Int == 200)
            #expect(record["path"] as? String == "/echo/anything?x=1")
            #expect(record["request_id"] as? String == response.header("x-request-id"))
        }
    }

    /// A client that sends a request and closes at once gets its response written to a closed
    /// connection: the first write is answered with a reset, the next fails with EPIPE, which
    /// must not raise SIGPIPE and end the process (the bench's 1 MiB scenario found it).
    @Test func aClientLeavingBeforeItsResponseDoesNotStopLoom() async throws {
        try await withBackend { backendPort in
            let port = freeLoopbackPort()
            // This test process ignores SIGPIPE (SwiftNIO does so), and a child inherits that:
            // env gives loom the default action back, as a shell or systemd would.
            let loom = try LoomProcess(
                executable: URL(fileURLWithPath: "/usr/bin/env"), ["--default-signal=PIPE", LoomProcess.executableURL.path],
                environment: [
                    "PATH": "/usr/bin:/bin", "WARPDRIVE_TARGET_HOST": "127.0.0.1", "WARPDRIVE_TARGET_PORT": String(backendPort),
                    "WARPDRIVE_HTTP_PORT": String(port),
                ])
            defer { loom.signal(SIGKILL) }
            #expect(try loom.waitUntilListening() == port)
            for _ in 0..<3 {
                let client = try RawClient(port: port)
                try client.send("GET /stream?bytes=8000000 HTTP/1.1\r\nHost: app\r\n\r\n")
                client.closeNow()
            }
            try await Task.sleep(for: .milliseconds(300))
            let response = try RawClient(port: port).sendAndRead("GET /echo HTTP/1.1\r\nHost: app\r\n\r\n")
            #expect(response.status == 200)
        }
    }

    @Test(arguments: ["yaml", "toml"])
    func runLoadsEitherDialectFromFlagOrEnvironment(dialect: String) async throws {
        try await withBackend { backendPort in
            let port = freeLoopbackPort()
            let text = dialect == "yaml"
                ? """
                listeners:
                  - name: http
                    address: "127.0.0.1:${PORT}"
                upstreams:
                  - name: backend
                    endpoints: ["127.0.0.1:\(backendPort)"]
                routes:
                  - id: hello
                    path: /hello
                    respond: {status: 201, headers: {X-Hello: yes}, body: "hi"}
                  - id: api
                    path: /api/*
                    upstream: backend
                    strip_prefix: true
                """
                : """
                [server]
                http_port = "${PORT}"
                [upstreams.backend]
                host = "127.0.0.1"
                port = \(backendPort)
                [[routes]]
                path_exact = "/hello"
                respond = { status = 201, headers = { X-Hello = "yes" }, body = "hi" }
                [[routes]]
                path_prefix = "/api"
                upstream = "backend"
                strip_prefix = true
                """
            let path = try temporaryFile(named: "gateway.\(dialect)", text)
            for viaEnvironment in [false, true] {
                let loom = viaEnvironment
                    ? try LoomProcess(["run"], environment: ["LOOM_CONFIG": path, "PORT": String(port)])
                    : try LoomProcess(["run", "--config", path], environment: ["PORT": String(port)])
                defer { loom.signal(SIGKILL); _ = loom.waitForExit() }
                _ = try loom.waitUntilListening()
                let hello = try RawClient(port: port).sendAndRead("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(hello.status == 201)
                #expect(hello.header("x-hello") == "yes")
                #expect(hello.bodyText == "hi")
                let api = try RawClient(port: port).sendAndRead("GET /api/users?id=7 HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(api.status == 200)
                #expect(try EchoedRequest(api).uri == "/users?id=7")
            }
        }
    }

    @Test func ctlChangesARunningLoomAndSavesTheChanges() async throws {
        try await withBackend { backendPort in
            let port = freeLoopbackPort()
            let path = try temporaryFile(named: "gateway.yaml", """
                control:
                  socket: loom.sock
                server:
                  watch_config: false
                listeners:
                  - name: http
                    address: "127.0.0.1:\(port)"
                upstreams:
                  - name: app
                    endpoints: ["127.0.0.1:\(backendPort)", "${SPARE}"]
                routes:
                  - id: api
                    path: /api/*
                    upstream: app
                """)
            let environment = ["SPARE": "127.0.0.1:9"]
            let loom = try LoomProcess(["run", "--config", path], environment: environment)
            defer { loom.signal(SIGKILL); _ = loom.waitForExit() }
            _ = try loom.waitUntilListening()
            func ctl(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
                try LoomProcess.run(["ctl", "--config", path] + arguments, environment: environment)
            }
            let status = try ctl("status")
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stdout.contains(#""phase" : "serving""#), "\(status.stdout)")
            // The socket is found through the configuration, or given outright after the subcommand.
            let socket = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("loom.sock").path
            #expect(try LoomProcess.run(["ctl", "routes", "--socket", socket]).stdout.contains(#""name" : "api""#))
            #expect(try LoomProcess.run(["ctl", "upstreams"], environment: ["LOOM_CONTROL_SOCKET": socket]).stdout.contains(#""name" : "app""#))
            // A definition from a YAML file, and a raw request line.
            let upstream = try temporaryFile(named: "other.yaml", "name: other\nendpoints: [\"127.0.0.1:\(backendPort)\"]\n")
            #expect(try ctl("add-upstream", "--file", upstream).status == 0)
            let raw = try ctl("send", #"{"command": "list_endpoints", "upstream": "other"}"#)
            #expect(raw.status == 0 && raw.stdout.contains(#""address" : "127.0.0.1:\#(backendPort)""#), "\(raw)")

            let drained = try ctl("drain", "app", "127.0.0.1:9")
            #expect(drained.status == 0 && drained.stdout.contains(#"drain endpoint 127.0.0.1:9 of upstream \"app\""#), "\(drained)")
            #expect(drained.stderr == "processing...\n")
            let added = try ctl("add-route", "{id: hello, path: /hello, respond: {status: 200, body: hi}}", "--position", "0")
            #expect(added.status == 0, "\(added.stderr)")
            #expect(try RawClient(port: port).sendAndRead("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n").bodyText == "hi")

            let refused = try ctl("add-route", #"{"id": "x", "path": "/x", "upstream": "nowhere"}"#)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("loom ctl: rejected, the running configuration stays") && refused.stderr.contains("nowhere"), "\(refused.stderr)")
            #expect(try ctl("weight", "app", "127.0.0.1:9", "0").stderr.contains("1...1000"))

            let saved = try ctl("save")
            #expect(saved.status == 0, "\(saved.stderr)")
            let written = try String(contentsOfFile: path, encoding: .utf8)
            #expect(written.contains("${SPARE}") && written.contains("drain: true") && written.contains("id: hello"), "\(written)")
            let after = try JSONSerialization.jsonObject(with: Data(try ctl("status").stdout.utf8)) as? [String: Any]
            #expect((after?["unsaved_changes"] as? [String])?.isEmpty == true)
        }
    }

    @Test func ctlWithoutASocketSaysWhereToFindOne() throws {
        let path = try temporaryFile(named: "gateway.yaml", "routes: []\n")
        let result = try LoomProcess.run(["ctl", "--config", path, "status"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("has no control section"), "\(result.stderr)")
        let missing = try LoomProcess.run(["ctl", "status", "--socket", "/nonexistent/loom.sock"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot connect to the control socket /nonexistent/loom.sock"), "\(missing.stderr)")
    }
}

extension RawClient {
    func sendAndRead(_ request: String) throws -> RawResponse {
        try send(request)
        return try readResponse()
    }
}

extension LoomProcess {
    /// Waits (bounded) until stdout has at least `count` lines, then returns them.
    func stdoutLines(waitingFor count: Int, timeout: Double = 10) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var lines: [String] = []
        repeat {
            lines = stdout.split(separator: "\n").map(String.init)
            if lines.count >= count { break }
            usleep(20_000)
        } while Date() < deadline
        return lines
    }
}
