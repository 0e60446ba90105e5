import Foundation
import Logging
import LoomConfig
import NIOConcurrencyHelpers
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import LoomProxy

extension ProxyE2E {
    /// The control socket over a real unix socket against a running engine and real
    /// backends: every command, bad requests, concurrent clients, permissions, and changes
    /// under load.
    @Suite struct ControlSocketTests {
        /// Answer lines to one request (`processing` first when there is one) as objects.
        static func ask(_ fixture: ReloadFixture, _ request: String) throws -> [[String: Any]] {
            let client = try ControlClient(path: try #require(fixture.control?.path), timeout: .seconds(20))
            try client.send(request)
            var answers: [[String: Any]] = []
            while let line = try client.readLine() {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
                answers.append(object)
                if object["status"] as? String != "processing" { break }
            }
            return answers
        }

        /// The final answer's result, which must be `ok`.
        static func ok(_ fixture: ReloadFixture, _ request: String) throws -> [String: Any] {
            let answer = try #require(try ask(fixture, request).last)
            #expect(answer["status"] as? String == "ok", "\(request) → \(answer)")
            return answer["result"] as? [String: Any] ?? [:]
        }

        /// The final answer's error message, which must be an error.
        static func error(_ fixture: ReloadFixture, _ request: String) throws -> String {
            let answer = try #require(try ask(fixture, request).last)
            #expect(answer["status"] as? String == "error", "\(request) → \(answer)")
            return answer["error"] as? String ?? ""
        }

        /// A fixture with a control socket in its directory, a `/echo` route to `app` and
        /// an admin token (a secret `dump` must hide).
        static func withControl(backends: Int = 2, environment: [String: String] = [:], _ body: (ReloadFixture) async throws -> Void) async throws {
            try await ReloadFixture.with(backends: backends) { fixture in
                let control = "control:\n  socket: control.sock\n"
                let upstreams = "  - name: app\n    endpoints: [\"127.0.0.1:\(fixture.backends[0].port)\"]\n"
                try fixture.write(control + fixture.yaml(routes: "  - id: echo\n    path: /echo\n    upstream: app\n", upstreams: upstreams)
                    .replacingOccurrences(of: "  watch_config: false\n", with: "  watch_config: false\n  admin_token: hunter2-secret\n"))
                try await fixture.start(environment: environment)
                try await body(fixture)
            }
        }

        @Test func readCommandsAnswerWithTheRunningState() async throws {
            try await Self.withControl { fixture in
                let status = try Self.ok(fixture, #"{"command": "status"}"#)
                #expect(status["config_generation"] as? Int == 1)
                #expect(status["phase"] as? String == "serving")
                #expect((status["unsaved_changes"] as? [String])?.isEmpty == true)
                let routes = try Self.ok(fixture, #"{"command": "list_routes"}"#)["routes"] as? [[String: Any]]
                #expect(routes?.map { $0["name"] as? String } == ["echo"])
                let upstreams = try Self.ok(fixture, #"{"command": "list_upstreams"}"#)["upstreams"] as? [[String: Any]]
                #expect(upstreams?.map { $0["name"] as? String } == ["app"])
                let endpoints = try Self.ok(fixture, #"{"command": "list_endpoints", "upstream": "app"}"#)["endpoints"] as? [[String: Any]]
                #expect(endpoints?.first?["address"] as? String == "127.0.0.1:\(fixture.backends[0].port)")
                #expect(endpoints?.first?["draining"] as? Bool == false)
                #expect(try Self.error(fixture, #"{"command": "list_endpoints", "upstream": "nope"}"#) == #"there is no upstream named "nope""#)
                let dump = try Self.ok(fixture, #"{"command": "dump"}"#)
                let text = String(decoding: try JSONSerialization.data(withJSONObject: dump), as: UTF8.self)
                #expect(text.contains("\"echo\""))
                #expect(!text.contains("hunter2"), "dump shows a secret")
            }
        }

        @Test func routesAndUpstreamsComeAndGo() async throws {
            try await Self.withControl { fixture in
                let other = fixture.backends[1].port
                let answers = try Self.ask(fixture, #"{"id": "u1", "command": "add_upstream", "upstream": {"name": "other", "endpoints": ["127.0.0.1:\#(other)"]}}"#)
                #expect(answers.map { $0["status"] as? String } == ["processing", "ok"])
                #expect(answers.allSatisfy { $0["id"] as? String == "u1" && $0["version"] as? Int == 1 })
                let added = try Self.ok(fixture, #"{"command": "add_route", "route": {"id": "beta", "path": "/beta/*", "upstream": "other"}, "position": 0}"#)
                #expect(added["changes"] as? [String] == [#"add route "beta""#])
                #expect(added["generation"] as? Int == 3)
                #expect(try fixture.get("/beta/x").status == 200)
                #expect(fixture.backends[1].requestURIs.withLockedValue { $0 } == ["/beta/x"])
                let routes = try Self.ok(fixture, #"{"command": "list_routes"}"#)["routes"] as? [[String: Any]]
                #expect(routes?.map { $0["name"] as? String } == ["beta", "echo"])

                // Refused whole, with the validator's words; the running configuration stays.
                let unknown = try Self.error(fixture, #"{"command": "add_route", "route": {"id": "bad", "path": "/bad", "upstream": "nowhere"}}"#)
                #expect(unknown.hasPrefix("rejected") && unknown.contains("nowhere"), "\(unknown)")
                #expect(try Self.error(fixture, #"{"command": "add_route", "route": {"id": "beta", "path": "/b2", "upstream": "app"}}"#).contains("exists"))
                #expect(try Self.error(fixture, #"{"command": "remove_upstream", "name": "other"}"#).contains("other"))
                #expect(try Self.error(fixture, #"{"command": "add_route", "route": {"path": "/x"}}"#).contains("\"id\""))

                _ = try Self.ok(fixture, #"{"command": "remove_route", "name": "beta"}"#)
                #expect(try fixture.get("/beta/x").status == 404)
                _ = try Self.ok(fixture, #"{"command": "remove_upstream", "name": "other"}"#)
                #expect(try Self.error(fixture, #"{"command": "remove_route", "name": "beta"}"#).contains("no route"))
                let status = try Self.ok(fixture, #"{"command": "status"}"#)
                #expect(status["config_generation"] as? Int == 5)
                #expect((status["unsaved_changes"] as? [String])?.count == 4)
            }
        }

        @Test func endpointsAreAddedDrainedWeightedAndRemoved() async throws {
            try await Self.withControl { fixture in
                let (a, b) = ("127.0.0.1:\(fixture.backends[0].port)", "127.0.0.1:\(fixture.backends[1].port)")
                _ = try Self.ok(fixture, #"{"command": "add_endpoint", "upstream": "app", "address": "\#(b)"}"#)
                func served(_ count: Int) throws -> (a: Int, b: Int) {
                    let before = fixture.backends.map { $0.requestURIs.withLockedValue { $0.count } }
                    for _ in 0..<count { #expect(try fixture.get("/echo").status == 200) }
                    let after = fixture.backends.map { $0.requestURIs.withLockedValue { $0.count } }
                    return (after[0] - before[0], after[1] - before[1])
                }
                #expect(try served(8) == (4, 4))
                let drained = try Self.ok(fixture, #"{"command": "drain_endpoint", "upstream": "app", "address": "\#(b)"}"#)
                #expect(drained["changes"] as? [String] == ["replace endpoint \(b) of upstream \"app\""])
                #expect(try served(6) == (6, 0))
                let endpoints = try Self.ok(fixture, #"{"command": "list_endpoints", "upstream": "app"}"#)["endpoints"] as? [[String: Any]] ?? []
                #expect(endpoints.map { $0["draining"] as? Bool } == [false, true])
                #expect(endpoints.map { $0["available"] as? Bool } == [true, false])
                _ = try Self.ok(fixture, #"{"command": "undrain_endpoint", "upstream": "app", "address": "\#(b)"}"#)
                _ = try Self.ok(fixture, #"{"command": "set_weight", "upstream": "app", "address": "\#(a)", "weight": 3}"#)
                #expect(try served(8) == (6, 2))
                #expect(try Self.error(fixture, #"{"command": "set_weight", "upstream": "app", "address": "\#(a)", "weight": 0}"#).contains("1...1000"))
                #expect(try Self.error(fixture, #"{"command": "drain_endpoint", "upstream": "app", "address": "127.0.0.1:1"}"#).contains("no endpoint"))
                #expect(try Self.error(fixture, #"{"command": "add_endpoint", "upstream": "app", "address": "nonsense"}"#).contains("invalid endpoint"))
                #expect(try Self.error(fixture, #"{"command": "add_endpoint", "upstream": "app", "address": "\#(a)"}"#).contains("has that endpoint"))
                _ = try Self.ok(fixture, #"{"command": "remove_endpoint", "upstream": "app", "address": "\#(a)"}"#)
                #expect(try served(4) == (0, 4))
                // The last endpoint cannot go: an upstream needs one.
                #expect(try Self.error(fixture, #"{"command": "remove_endpoint", "upstream": "app", "address": "\#(b)"}"#).contains("no endpoints"))
            }
        }

        @Test func badRequestsGetSpecificErrorsAndTheConnectionStaysUsable() async throws {
            try await Self.withControl(backends: 1) { fixture in
                let client = try ControlClient(path: try #require(fixture.control?.path), timeout: .seconds(10))
                let cases: [(String, String)] = [
                    ("{", "malformed JSON"),
                    ("[1, 2]", "expected a JSON object"),
                    (#"{"command": 5}"#, #"missing "command""#),
                    (#"{"command": "stauts"}"#, #"unknown command "stauts" (did you mean "status"?)"#),
                    (#"{"version": 2, "command": "status"}"#, "unsupported protocol version 2"),
                    (#"{"command": "status", "verbose": true}"#, #"status does not take "verbose""#),
                    (#"{"command": "remove_route"}"#, #"remove_route needs "name""#),
                    (#"{"command": "remove_route", "name": 7}"#, #""name" must be a non-empty string"#),
                    (#"{"command": "add_route", "route": "id: x"}"#, #""route" must be an object"#),
                    (#"{"command": "save", "path": "relative.yaml"}"#, "must be absolute"),
                ]
                for (request, expected) in cases {
                    let answer = try client.request(request)
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])
                    #expect(object["status"] as? String == "error", "\(request)")
                    #expect((object["error"] as? String)?.contains(expected) == true, "\(request) → \(answer)")
                }
                // Ids come back with their type, even on an error.
                #expect(try client.request(#"{"id": 42, "command": "nope"}"#).contains(#""id":42"#))
                #expect(try client.request(#"{"id": "a", "command": "status"}"#).contains(#""id":"a""#))
                // Three requests in one write are answered in order.
                try client.send(#"{"id": 1, "command": "status"}"# + "\n" + #"{"id": 2, "command": "list_routes"}"# + "\n" + #"{"id": 3, "command": "dump"}"#)
                let ids = try (0..<3).map { _ in try #require(try client.readLine()) }.map { $0.contains(#""id":1"#) ? 1 : $0.contains(#""id":2"#) ? 2 : 3 }
                #expect(ids == [1, 2, 3])
                // A line past the limit ends the connection with an error.
                try client.send(String(repeating: "x", count: (1 << 20) + 10))
                #expect(try client.readLine()?.contains("longer than") == true)
                #expect(try client.readLine() == nil)
            }
        }

        /// Connects to `path`, sends `bytes`, shuts down the sending side (as `socat` and
        /// `nc -N` do) and returns every line loom writes until it closes the connection.
        static func sendAndShutDown(_ path: String, _ bytes: [UInt8]) throws -> [String] {
            let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(connected == 0)
            var limit = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            try #require(bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count)
            shutdown(descriptor, Int32(SHUT_WR))
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                try #require(count >= 0, "no end of stream from loom within 10 s")
                if count == 0 { break }
                received += chunk[..<count]
            }
            return String(decoding: received, as: UTF8.self).split(separator: "\n").map(String.init)
        }

        @Test func aClientThatShutsDownItsSideGetsEveryAnswerAndInvalidUTF8IsRefused() async throws {
            try await Self.withControl(backends: 1) { fixture in
                let path = try #require(fixture.control?.path)
                let requests = #"{"id": 1, "command": "add_route", "route": {"id": "late", "path": "/late", "upstream": "app"}}"# + "\n" + #"{"id": 2, "command": "status"}"# + "\n"
                let answers = try Self.sendAndShutDown(path, Array(requests.utf8))
                #expect(answers.count == 3, "\(answers)")
                #expect(answers.first?.contains(#""status":"processing""#) == true)
                #expect(answers.dropFirst().allSatisfy { $0.contains(#""status":"ok""#) }, "\(answers)")
                #expect(try fixture.get("/late").status == 200)

                let invalid = try Self.sendAndShutDown(path, Array(#"{"command": "remove_route", "name": "late"#.utf8) + [0xFF, 0x22, 0x7D, 0x0A])
                #expect(invalid == [#"{"error":"a request line is not valid UTF-8","status":"error","version":1}"#])
                #expect(try fixture.get("/late").status == 200)
            }
        }

        @Test func saveNeverOverwritesEditsLoomHasNotLoadedAndItsOwnWriteIsNoReasonToReload() async throws {
            try await Self.withControl(backends: 2) { fixture in
                let b = "127.0.0.1:\(fixture.backends[1].port)"
                _ = try Self.ok(fixture, #"{"command": "add_endpoint", "upstream": "app", "address": "\#(b)"}"#)
                _ = try Self.ok(fixture, #"{"command": "save"}"#)
                // The file watch sees loom's own write: the changes made since stay.
                _ = try Self.ok(fixture, #"{"command": "drain_endpoint", "upstream": "app", "address": "\#(b)"}"#)
                let watched = await fixture.reloader.perform(.fileIfChanged, trigger: "file change")
                #expect(watched.unsaved == ["drain endpoint \(b) of upstream \"app\""])
                #expect(fixture.engine?.store.current.configuration.upstreams[0].draining == [false, true])
                // An edit loom has not loaded is not overwritten.
                let edited = try String(contentsOfFile: fixture.path, encoding: .utf8) + "# edited by hand\n"
                try edited.write(toFile: fixture.path, atomically: true, encoding: .utf8)
                #expect(try Self.error(fixture, #"{"command": "save"}"#).contains("has changed since loom last read it"))
                #expect(try String(contentsOfFile: fixture.path, encoding: .utf8) == edited)
                // Once it is loaded (which drops the unsaved drain), save works again.
                _ = try Self.ok(fixture, #"{"command": "reload"}"#)
                #expect(fixture.engine?.store.current.configuration.upstreams[0].draining == [false, false])
                // The file named another way is still the file: backed up, unsaved cleared.
                _ = try Self.ok(fixture, #"{"command": "set_weight", "upstream": "app", "address": "\#(b)", "weight": 2}"#)
                let link = fixture.directory.appendingPathComponent("link.yaml").path
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fixture.path)
                let saved = try Self.ok(fixture, #"{"command": "save", "path": "\#(link)"}"#)
                #expect(saved["path"] as? String == fixture.path && saved["backup"] as? String == fixture.path + ".bak")
                #expect((try Self.ok(fixture, #"{"command": "status"}"#)["unsaved_changes"] as? [String])?.isEmpty == true)
                #expect(try String(contentsOfFile: fixture.path, encoding: .utf8).contains("weight: 2"))
            }
        }

        @Test func concurrentClientsAllGetTheirAnswers() async throws {
            try await Self.withControl(backends: 1) { fixture in
                let path = try #require(fixture.control?.path)
                let results = NIOLockedValueBox<[String]>([])
                let threads = (0..<8).map { index in
                    Thread {
                        do {
                            let client = try ControlClient(path: path, timeout: .seconds(30))
                            let added = try client.request(#"{"command": "add_route", "route": {"id": "r\#(index)", "path": "/r\#(index)", "upstream": "app"}}"#)
                            let listed = try client.request(#"{"command": "list_routes"}"#)
                            results.withLockedValue { $0.append(added.contains(#""status":"ok""#) && listed.contains("r\(index)") ? "ok" : added) }
                        } catch {
                            results.withLockedValue { $0.append("\(error)") }
                        }
                    }
                }
                threads.forEach { $0.start() }
                let deadline = Date().addingTimeInterval(30)
                while results.withLockedValue({ $0.count }) < 8 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
                #expect(results.withLockedValue { $0 } == Array(repeating: "ok", count: 8))
                let routes = try Self.ok(fixture, #"{"command": "list_routes"}"#)["routes"] as? [[String: Any]] ?? []
                #expect(Set(routes.compactMap { $0["name"] as? String }) == Set(["echo"] + (0..<8).map { "r\($0)" }))
                #expect(try Self.ok(fixture, #"{"command": "status"}"#)["config_generation"] as? Int == 9)
            }
        }

        @Test(.enabled(if: geteuid() == 0, "needs root to connect as another user"))
        func anotherUserCannotConnect() async throws {
            try await Self.withControl(backends: 1) { fixture in
                let path = try #require(fixture.control?.path)
                var info = stat()
                #expect(stat(path, &info) == 0)
                #expect(info.st_mode & 0o777 == 0o600)
                // `nobody` is refused by the file mode...
                let script = "import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('\(path)')\n    print(s.makefile().readline().strip())\nexcept PermissionError:\n    print('EACCES')\n"
                func asNobody() throws -> String {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
                    process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script]
                    let output = Pipe()
                    process.standardOutput = output
                    try process.run()
                    process.waitUntilExit()
                    return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }
                #expect(try asNobody() == "EACCES")
                // ...and by its credentials when the mode was loosened by hand (told so before
                // it can send anything).
                chmod(path, 0o666)
                let refused = try asNobody()
                #expect(refused.contains("permission denied: uid 65534"), "\(refused)")
                #expect(try Self.ok(fixture, #"{"command": "status"}"#)["phase"] as? String == "serving")
            }
        }

        @Test func theSocketReplacesAStaleFileButNotALiveSocketOrAnotherFile() async throws {
            try await Self.withControl(backends: 1) { fixture in
                let engine = try #require(fixture.engine)
                let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
                let live = try #require(fixture.control?.path)
                await #expect(throws: ControlServer.StartError.self) {
                    _ = try await ControlServer.start(path: live, engine: engine, reloader: fixture.reloader, version: "t", logger: logger)
                }
                let file = fixture.directory.appendingPathComponent("plain").path
                try "keep me".write(toFile: file, atomically: true, encoding: .utf8)
                do {
                    _ = try await ControlServer.start(path: file, engine: engine, reloader: fixture.reloader, version: "t", logger: logger)
                    Issue.record("replaced a regular file")
                } catch {
                    #expect("\(error)".contains("is not a socket"))
                }
                #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")
                // A socket file nobody listens on (a loom that was killed) is replaced.
                let stale = fixture.directory.appendingPathComponent("stale.sock").path
                let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(stale.utf8)) }
                _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
                close(descriptor)
                let server = try await ControlServer.start(path: stale, engine: engine, reloader: fixture.reloader, version: "t", logger: logger)
                #expect(try ControlClient(path: stale).request(#"{"command": "status"}"#).contains(#""status":"ok""#))
                await server.stop()
                #expect(!FileManager.default.fileExists(atPath: stale))
            }
        }

        @Test func runtimeChangesLastUntilTheFileIsReloadedUnlessSaved() async throws {
            let port = 9
            try await Self.withControl(environment: ["SPARE": "127.0.0.1:\(port)"]) { fixture in
                // The file names an endpoint through ${SPARE}; it stays a reference when saved.
                let text = try String(contentsOfFile: fixture.path, encoding: .utf8)
                try text.replacingOccurrences(of: "endpoints: [\"127.0.0.1:\(fixture.backends[0].port)\"]",
                                              with: "endpoints: [\"127.0.0.1:\(fixture.backends[0].port)\", \"${SPARE}\"]").write(toFile: fixture.path, atomically: true, encoding: .utf8)
                _ = try Self.ok(fixture, #"{"command": "reload"}"#)
                let spare = "127.0.0.1:\(port)"
                _ = try Self.ok(fixture, #"{"command": "drain_endpoint", "upstream": "app", "address": "\#(spare)"}"#)
                #expect(try Self.ok(fixture, #"{"command": "status"}"#)["unsaved_changes"] as? [String] == ["drain endpoint \(spare) of upstream \"app\""])
                // A reload reads the file, which wins.
                let reloaded = try Self.ok(fixture, #"{"command": "reload"}"#)
                #expect(reloaded["changes"] as? [String] == ["replace endpoint \(spare) of upstream \"app\""])
                #expect(fixture.engine?.store.current.configuration.upstreams[0].draining == [false, false])
                #expect((try Self.ok(fixture, #"{"command": "status"}"#)["unsaved_changes"] as? [String])?.isEmpty == true)
                // Drained and saved, it survives the next reload.
                _ = try Self.ok(fixture, #"{"command": "drain_endpoint", "upstream": "app", "address": "\#(spare)"}"#)
                let saved = try Self.ok(fixture, #"{"command": "save"}"#)
                #expect(saved["path"] as? String == fixture.path)
                #expect(saved["backup"] as? String == fixture.path + ".bak")
                let written = try String(contentsOfFile: fixture.path, encoding: .utf8)
                #expect(written.contains("${SPARE}") && written.contains("drain: true") && !written.contains(spare), "\(written)")
                #expect(try String(contentsOfFile: fixture.path + ".bak", encoding: .utf8).contains("${SPARE}\"]"))
                #expect(try Self.ok(fixture, #"{"command": "reload"}"#)["applied"] as? Bool == false)
                #expect(fixture.engine?.store.current.configuration.upstreams[0].draining == [false, true])
                // Saving elsewhere leaves the file alone.
                let copy = fixture.directory.appendingPathComponent("copy.yaml").path
                #expect(try Self.ok(fixture, #"{"command": "save", "path": "\#(copy)"}"#)["backup"] == nil)
                #expect(try String(contentsOfFile: copy, encoding: .utf8) == written)
            }
        }

        @Test func anEditThatChangesOnlyTheFileIsStillUnsaved() async throws {
            try await Self.withControl(backends: 1, environment: ["W": "2"]) { fixture in
                let a = "127.0.0.1:\(fixture.backends[0].port)"
                let text = try String(contentsOfFile: fixture.path, encoding: .utf8)
                try text.replacingOccurrences(of: "endpoints: [\"\(a)\"]", with: "endpoints: [{address: \"\(a)\", weight: \"${W}\"}]")
                    .write(toFile: fixture.path, atomically: true, encoding: .utf8)
                #expect(try Self.ok(fixture, #"{"command": "reload"}"#)["applied"] as? Bool == true)
                // The running weight is already 2: nothing to apply, but `${W}` became 2 in
                // the document, which a save would write.
                let same = try Self.ok(fixture, #"{"command": "set_weight", "upstream": "app", "address": "\#(a)", "weight": 2}"#)
                #expect(same["applied"] as? Bool == false)
                #expect(same["unsaved_changes"] as? [String] == ["set the weight of endpoint \(a) of upstream \"app\" to 2"])
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func hundredChangesUnderLoadFailNoRequest() async throws {
            try await Self.withControl { fixture in
                let (a, b) = ("127.0.0.1:\(fixture.backends[0].port)", "127.0.0.1:\(fixture.backends[1].port)")
                _ = try Self.ok(fixture, #"{"command": "add_endpoint", "upstream": "app", "address": "\#(b)"}"#)
                _ = try Self.ok(fixture, #"{"command": "add_route", "route": {"id": "v0", "path": "/v0", "upstream": "app"}}"#)
                let port = try #require(fixture.port)
                let stop = NIOLockedValueBox(false)
                let tallies = fixture.load(threads: 4, port: port, until: stop)
                let client = try ControlClient(path: try #require(fixture.control?.path), timeout: .seconds(20))
                // Routes come and go, endpoints are drained and put back in turn (one of the
                // two always serves), weights change.
                for i in 1...100 {
                    let request: String = switch i % 5 {
                    case 0: #"{"command": "add_route", "route": {"id": "v\#(i)", "path": "/v\#(i)", "upstream": "app"}, "position": 0}"#
                    case 1: #"{"command": "drain_endpoint", "upstream": "app", "address": "\#(i % 2 == 0 ? a : b)"}"#
                    case 2: #"{"command": "set_weight", "upstream": "app", "address": "\#(a)", "weight": \#(1 + i % 4)}"#
                    case 3: #"{"command": "undrain_endpoint", "upstream": "app", "address": "\#((i - 2) % 2 == 0 ? a : b)"}"#
                    default: #"{"command": "remove_route", "name": "v\#(i - 4)"}"#
                    }
                    let answer = try client.request(request)
                    guard answer.contains(#""status":"ok""#) else {
                        Issue.record("change \(i): \(answer)")
                        break
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
                stop.withLockedValue { $0 = true }
                let results = await tallies.value
                let failures = results.flatMap(\.failures)
                #expect(failures.isEmpty, "\(failures.prefix(5))")
                #expect(results.reduce(0) { $0 + $1.requests } > 400)
                #expect(try Self.ok(fixture, #"{"command": "status"}"#)["config_generation"] as? Int == 103)
            }
        }
    }
}
