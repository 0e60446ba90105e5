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

        /// The pids of app's forked workers (`--fork-worker`), in the order they were forked.
        var workers: [Int32] {
            journal.compactMap { line in line.hasPrefix("app worker ") ? Int32(line.split(separator: " ")[2]) : nil }
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

    /// The child and what it forked: the child by the kernel (its parent-death signal), its
    /// worker by the group's watchdog.
    @Test func childrenDieWithLoomEvenWhenItIsKilled() async throws {
        let gateway = try Gateway { paths in paths.upstream("app", arguments: ["--fork-worker"]) }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" && gateway.workers.count == 1 })
        let pids = [Int32(try #require(gateway.pid("app"))), try #require(gateway.workers.first)]
        defer { for pid in pids where !E2E.isGone(pid) { kill(pid, SIGKILL) } }
        gateway.loom.signal(SIGKILL)
        _ = gateway.loom.waitForExit()
        #expect(await E2E.eventually(timeout: .seconds(5)) { E2E.isGone(pids[0]) }, "the child")
        #expect(await E2E.eventually(timeout: .seconds(5)) { E2E.isGone(pids[1]) }, "its worker")
    }

    /// What a child forks dies with it: after a crash, and after a stop the workers ignored.
    @Test func whatAChildForkedDiesWithIt() async throws {
        let gateway = try Gateway { paths in paths.upstream("app", "backoff: 100ms", arguments: ["--fork-worker"]) }
        defer { gateway.loom.signal(SIGKILL) }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" && gateway.workers.count == 1 })
        let first = try #require(gateway.workers.first)
        defer { for worker in gateway.workers where !E2E.isGone(worker) { kill(worker, SIGKILL) } }
        #expect(try gateway.get("/crash").status == 200)
        #expect(await E2E.eventually(timeout: .seconds(5)) { E2E.isGone(first) }, "the crashed master's worker was killed")
        #expect(await E2E.eventually(timeout: .seconds(10)) { gateway.workers.count == 2 && gateway.state("app") == "running" })
        let second = gateway.workers[1]
        gateway.loom.signal(SIGTERM)
        #expect(gateway.loom.waitForExit(timeout: 10) == 0)
        #expect(gateway.journal.contains("app stop"))
        #expect(await E2E.eventually(timeout: .seconds(5)) { E2E.isGone(second) }, "the worker that ignored SIGTERM was killed")
    }

    /// Shutting down while a restart is under way and another process waits out its backoff:
    /// neither starts again.
    @Test func nothingStartsWhileLoomShutsDown() async throws {
        let gateway = try Gateway { paths in
            """
              - name: broken
                endpoints: ["unix:\(paths.directory)/broken.sock"]
                process: {command: /bin/sh, args: ["-c", "echo giving up; exit 1"], backoff: 700ms, max_restarts: 100}

            """ + paths.upstream("app", "stop_timeout: 1500ms", arguments: ["--ignore-term"])
        }
        defer { gateway.loom.signal(SIGKILL) }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.state("app") == "running" && gateway.state("broken") == "backoff" })
        // app ignores SIGTERM: the restart waits out its 1.5 s stop timeout, and broken's
        // backoff ends meanwhile.
        let restart = try LoomProcess.run(["ctl", "--socket", gateway.directory + "/control.sock", "restart", "app"])
        #expect(restart.status == 0, "\(restart.stderr)")
        gateway.loom.signal(SIGTERM)
        #expect(gateway.loom.waitForExit(timeout: 10) == 0)
        #expect(gateway.journal.filter { $0.hasPrefix("app start") }.count == 1, "\(gateway.journal)")
        let log = gateway.loom.stderr
        let shutdown = try #require(log.range(of: "shutting down"))
        #expect(!log[shutdown.upperBound...].contains("giving up"), "broken was not started again: \(log)")
    }

    /// A process waiting for its dependencies keeps waiting through a reload that changes it
    /// and a `loom ctl restart`.
    @Test func aProcessWaitingForItsDependenciesIsNotStartedByAReloadOrARestart() async throws {
        let upstreams = { (paths: Gateway.Paths, version: String) in
            paths.upstream("db", arguments: ["--unhealthy-for", "600"]) + """

                    health_check: {path: /health, interval: 200ms}
                """ + "\n" + paths.upstream("app", "depends_on: [db], env: {APP_VERSION: \"\(version)\"}")
        }
        var paths: Gateway.Paths?
        let gateway = try Gateway { given in
            paths = given
            return upstreams(given, "1")
        }
        defer { gateway.loom.signal(SIGKILL) }
        #expect(await E2E.eventually(timeout: .seconds(15)) { gateway.journal.contains("db ready") })
        try Gateway.write(gateway.configPath, port: gateway.port, adminPort: gateway.adminPort, control: gateway.directory + "/control.sock",
                          upstreams: upstreams(try #require(paths), "2"))
        gateway.loom.signal(SIGHUP)
        #expect(await E2E.eventually(timeout: .seconds(10)) { gateway.loom.stderr.contains("configuration reloaded") })
        let restart = try LoomProcess.run(["ctl", "--socket", gateway.directory + "/control.sock", "restart", "app"])
        #expect(restart.status == 0, "\(restart.stderr)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(gateway.state("db") == "starting" && gateway.state("app") == "waiting")
        #expect(!gateway.journal.contains { $0.hasPrefix("app start") }, "\(gateway.journal)")
    }

    /// A child not ready within `ready_timeout` is stopped and restarted as a failure; the
    /// restart policies `on-failure` and `never` leave a clean or any exit down.
    @Test func theReadyTimeoutAndTheRestartPolicies() async throws {
        let gateway = try Gateway { paths in
            paths.upstream("app", "ready_timeout: 300ms, backoff: 5s", arguments: ["--delay", "10"]) + """

                  - name: done
                    endpoints: ["unix:\(paths.directory)/done.sock"]
                    process: {command: /bin/sh, args: ["-c", "exit 0"], restart: on-failure}
                  - name: failing
                    endpoints: ["unix:\(paths.directory)/failing.sock"]
                    process: {command: /bin/sh, args: ["-c", "exit 2"], restart: on-failure, backoff: 5s}
                  - name: once
                    endpoints: ["unix:\(paths.directory)/once.sock"]
                    process: {command: /bin/sh, args: ["-c", "exit 2"], restart: never}
                """
        }
        defer { gateway.loom.signal(SIGKILL) }
        #expect(await E2E.eventually(timeout: .seconds(10)) { gateway.state("app") == "backoff" })
        #expect(gateway.loom.stderr.contains("not ready within 300 ms: stopping it"))
        let processes = try gateway.processes()
        func summary(_ name: String) -> String {
            let process = processes[name] ?? [:]
            return "\(process["state"] as? String ?? "-") \(process["restarts"] as? Int ?? -1) \(process["last_exit"] as? String ?? "-")"
        }
        #expect(summary("app") == "backoff 1 exit status 0", "stopped (its SIGTERM handler exits 0), counted as a failure")
        #expect(summary("done") == "exited 0 exit status 0")
        #expect(summary("failing") == "backoff 1 exit status 2")
        #expect(summary("once") == "exited 0 exit status 2")
    }

    @Test func aReloadRestartsOnlyTheProcessWhoseDefinitionChanged() async throws {
        var paths: Gateway.Paths?
        let gateway = try Gateway { given in
            paths = given
            return given.upstream("app", "env: {APP_VERSION: \"1\"}, stop_signal: SIGINT") + "\n" + given.upstream("other")
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
        // Gracefully, with its own definition's stop signal (SIGINT), not the new one's.
        #expect(gateway.journal.contains("app interrupted") && !gateway.journal.contains("app stop"), "\(gateway.journal)")
        #expect(!gateway.journal.contains("other stop"))
    }
}
