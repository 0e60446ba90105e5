import Foundation
import Testing

/// Process supervision through a running `loom`: real children (Fixtures/supervised_app.py,
/// an HTTP server on a unix socket that notes its life in a journal) started, gated,
/// restarted, reloaded and stopped by loom.
@Suite(.serialized) struct ProcessSupervisionE2ETests {
    /// A loom with the upstreams `processes` (YAML list items), each routed at `/NAME/*`,
    /// and an admin API; the journal and sockets live in `directory`.
    final class Gateway {
        let directory: String
        let port = freeLoopbackPort()
        let adminPort = freeLoopbackPort()
        let configPath: String
        let loom: LoomProcess

        init(_ upstreams: (Gateway.Paths) throws -> String) throws {
            let paths = try Paths()
            directory = paths.directory
            configPath = directory + "/gateway.yaml"
            try Self.write(configPath, port: port, adminPort: adminPort, control: directory + "/control.sock", upstreams: try upstreams(paths))
            loom = try LoomProcess(["run", "--config", configPath])
            _ = try loom.waitUntilListening()
        }

        static func write(_ path: String, port: Int, adminPort: Int, control: String, upstreams: String) throws {
            try """
                server: {worker_threads: 1, shutdown_timeout: 5s}
                listeners: [{name: http, address: "127.0.0.1:\(port)"}]
                admin: {address: "127.0.0.1:\(adminPort)"}
                control: {socket: \(control)}
                upstreams:
                \(upstreams)
                routes:
                  - {id: all, path: /*, upstream: app}
                """.write(toFile: path, atomically: true, encoding: .utf8)
        }

        /// Where a test's files go, and the fixture's command line.
        struct Paths {
            let directory: String
            let app: String

            init() throws {
                directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-sv-\(UUID().uuidString.prefix(8))").path
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                app = try E2E.fixture("supervised_app")
            }

            /// An upstream NAME whose process is the fixture app (more `process` keys in `extra`).
            func upstream(_ name: String, _ extra: String = "", arguments: [String] = []) -> String {
                let args = ([app, name, socket(name), directory + "/journal"] + arguments).map { "\"\($0)\"" }.joined(separator: ", ")
                return """
                      - name: \(name)
                        endpoints: ["unix:\(socket(name))"]
                        process: {command: python3, args: [\(args)]\(extra.isEmpty ? "" : ", " + extra)}
                    """
            }

            func socket(_ name: String) -> String { directory + "/\(name).sock" }
        }

        var journal: [String] {
            ((try? String(contentsOfFile: directory + "/journal", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        func get(_ path: String) throws -> RawResponse {
            let client = try RawClient(port: port, timeout: 5)
            try client.send("GET \(path) HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
            return try client.readResponse()
        }

        /// The admin API's `/processes`, by name.
        func processes() throws -> [String: [String: Any]] {
            let client = try RawClient(port: adminPort, timeout: 5)
            try client.send("GET /processes HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            let list = E2E.json(try client.readResponse())["processes"] as? [[String: Any]] ?? []
            return Dictionary(list.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { $1 })
        }

        func state(_ name: String) -> String? { (try? processes())?[name]?["state"] as? String }
        func pid(_ name: String) -> Int? { (try? processes())?[name]?["pid"] as? Int }

        func metrics() throws -> String {
            let client = try RawClient(port: adminPort, timeout: 5)
            try client.send("GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            return try client.readResponse().bodyText
        }
    }

    @Test func startsInDependencyOrderRoutesOnceReadyLogsOutputAndStopsInReverse() async throws {
        let gateway = try Gateway { paths in
            paths.upstream("db", arguments: ["--delay", "1.5"]) + "\n" + paths.upstream("app", "depends_on: [db], env: {APP_VERSION: \"7\"}")
        }
        defer { gateway.loom.signal(SIGKILL) }
        // db takes 1.5 s to listen, and app waits for it: meanwhile, 503 with Retry-After.
        let early = try gateway.get("/")
        #expect(early.status == 503)
        #expect(early.header("retry-after") == "1")
        #expect(await E2E.eventually(timeout: .seconds(15)) { (try? gateway.get("/"))?.status == 200 })
        let answer = try gateway.get("/")
        #expect(answer.bodyText.hasPrefix("app ") && answer.bodyText.hasSuffix(" 7"), "\(answer.bodyText)")
        let journal = gateway.journal
        #expect(journal.map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == ["db start", "db ready", "app start", "app ready"])
        let processes = try gateway.processes()
        #expect(processes["db"]?["state"] as? String == "running" && processes["app"]?["state"] as? String == "running", "\(processes)")
        #expect(processes["app"]?["pid"] as? Int == Int(journal[2].split(separator: " ")[2]))
        // Each line of the children's stdout and stderr is in loom's log, with its name.
        let log = gateway.loom.stderr
        #expect(log.contains(#""msg":"hello from app","process":"app","stream":"stdout""#), "\(log)")
        #expect(log.contains(#""msg":"warming up db","process":"db","stream":"stderr""#))

        gateway.loom.signal(SIGTERM)
        #expect(gateway.loom.waitForExit() == 0)
        #expect(gateway.journal.suffix(2) == ["app stop", "db stop"], "dependents stop first: \(gateway.journal)")
    }

    @Test func aConfiguredHealthCheckMustPassBeforeTheProcessIsRouted() async throws {
        let gateway = try Gateway { paths in
            paths.upstream("app", arguments: ["--unhealthy-for", "2.5"]) + """

                    health_check: {path: /health, interval: 200ms, unhealthy_threshold: 1, healthy_threshold: 5}
                """
        }
        defer { gateway.loom.signal(SIGKILL) }
        // The socket accepts at once, but /health fails for 2.5 s: still starting, not routed.
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.journal.contains("app ready") })
        #expect(gateway.state("app") == "starting")
        #expect(try gateway.get("/").status == 503)
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" })
        // Routed at once: the checks that failed while it started do not count against it
        // (else five passes, a second, would be needed first).
        #expect(try gateway.get("/").status == 200)
    }

    @Test func aCrashRestartsAfterTheBackoffAndACrashLoopGivesUp() async throws {
        let gateway = try Gateway { paths in
            paths.upstream("app", "backoff: 400ms") + """

                  - name: broken
                    endpoints: ["unix:\(paths.directory)/broken.sock"]
                    process: {command: /bin/sh, args: ["-c", "echo giving up; exit 1"], backoff: 50ms, max_restarts: 2}
                """
        }
        defer { gateway.loom.signal(SIGKILL) }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" })
        let first = try #require(gateway.pid("app"))
        let crashed = Date()
        #expect(try gateway.get("/crash").status == 200)
        #expect(await E2E.eventually(timeout: .seconds(10)) { gateway.pid("app").map { $0 != first } ?? false })
        #expect(Date().timeIntervalSince(crashed) >= 0.35, "restarted only after its 400 ms backoff")
        #expect(await E2E.eventually(timeout: .seconds(10)) { (try? gateway.get("/"))?.status == 200 })
        let app = try #require(try gateway.processes()["app"])
        #expect(app["restarts"] as? Int == 1)
        #expect(app["last_exit"] as? String == "exit status 3")

        // Three failures in a row: two restarts, then no more.
        #expect(await E2E.eventually(timeout: .seconds(10)) { gateway.state("broken") == "crash-loop" })
        let broken = try #require(try gateway.processes()["broken"])
        #expect(broken["restarts"] as? Int == 2 && broken["pid"] == nil, "\(broken)")
        let metrics = try gateway.metrics()
        #expect(metrics.contains(#"loom_process_crash_loop{process="broken"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"loom_process_up{process="app"} 1"#))
        #expect(metrics.contains(#"loom_process_restarts_total{process="broken"} 2"#))
        #expect(gateway.loom.stderr.contains("crash loop, not restarting"))
        // `loom ctl restart` gives it another chance (a new child, the count started over).
        let restart = try LoomProcess.run(["ctl", "--socket", gateway.directory + "/control.sock", "restart", "broken"])
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(await E2E.eventually(timeout: .seconds(10)) { gateway.loom.stderr.components(separatedBy: "giving up").count - 1 >= 4 })
        let unknown = try LoomProcess.run(["ctl", "--socket", gateway.directory + "/control.sock", "restart", "nope"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no supervised process named \"nope\""), "\(unknown.stderr)")
    }

    @Test func theStopSignalThenSIGKILLAfterTheStopTimeout() async throws {
        let gateway = try Gateway { paths in
            paths.upstream("app", "stop_timeout: 500ms", arguments: ["--ignore-term"]) + "\n"
                + paths.upstream("polite", "stop_signal: SIGINT", arguments: ["--ignore-term"])
        }
        defer { gateway.loom.signal(SIGKILL) }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" && gateway.state("polite") == "running" })
        let listing = try LoomProcess.run(["ctl", "--socket", gateway.directory + "/control.sock", "processes"])
        #expect(listing.status == 0 && listing.stdout.contains(#""state" : "running""#), "\(listing)")
        let pid = try #require(gateway.pid("app"))
        let started = Date()
        gateway.loom.signal(SIGTERM)
        #expect(gateway.loom.waitForExit(timeout: 10) == 0)
        #expect(Date().timeIntervalSince(started) >= 0.45, "app had its 500 ms to stop")
        #expect(gateway.journal.contains("app ignored TERM") && gateway.journal.contains("polite interrupted"), "\(gateway.journal)")
        #expect(!gateway.journal.contains("polite ignored TERM"), "polite got SIGINT, not SIGTERM")
        #expect(gateway.loom.stderr.contains("still running 500 ms after the stop signal: killing it"))
        #expect(kill(Int32(pid), 0) != 0, "app was killed and reaped")
    }

    @Test func childrenDieWithLoomEvenWhenItIsKilled() async throws {
        let gateway = try Gateway { paths in paths.upstream("app") }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" })
        let pid = try #require(gateway.pid("app"))
        gateway.loom.signal(SIGKILL)
        _ = gateway.loom.waitForExit()
        // Killed by the kernel (parent-death signal): gone, or a zombie nobody has reaped yet.
        let dead = await E2E.eventually(timeout: .seconds(5)) {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return true }
            return status.contains("State:\tZ")
        }
        #expect(dead)
        if !dead { kill(Int32(pid), SIGKILL) }
    }

    @Test func aReloadRestartsOnlyTheProcessWhoseDefinitionChanged() async throws {
        var paths: Gateway.Paths?
        let gateway = try Gateway { given in
            paths = given
            return given.upstream("app", "env: {APP_VERSION: \"1\"}") + "\n" + given.upstream("other")
        }
        defer { gateway.loom.signal(SIGKILL) }
        let p = try #require(paths)
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" && gateway.state("other") == "running" })
        let (app, other) = (gateway.pid("app"), gateway.pid("other"))
        try Gateway.write(gateway.configPath, port: gateway.port, adminPort: gateway.adminPort, control: gateway.directory + "/control.sock",
                          upstreams: p.upstream("app", "env: {APP_VERSION: \"2\"}") + "\n" + p.upstream("other"))
        gateway.loom.signal(SIGHUP)
        #expect(await E2E.eventually(timeout: .seconds(15)) { (try? gateway.get("/"))?.bodyText.hasSuffix(" 2") == true })
        #expect(gateway.pid("app") != app)
        #expect(gateway.pid("other") == other, "the unchanged process kept running")
        #expect(gateway.journal.contains("app stop"), "the old child was stopped gracefully: \(gateway.journal)")
        #expect(!gateway.journal.contains("other stop"))
    }
}
