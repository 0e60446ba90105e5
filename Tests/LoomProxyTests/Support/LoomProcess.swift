import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `loom` executable built next to the test bundle (or a fixture program).
///
/// Output goes to temporary files rather than pipes, so a chatty process can never block on a
/// full pipe. Every wait is bounded; `deinit` kills the process if a test forgot to.
final class LoomProcess: @unchecked Sendable {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    /// The `loom` binary in the same build folder as this test bundle.
    static var executableURL: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidate = bundle.appendingPathComponent("loom")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        // Swift-testing's runner may be invoked from elsewhere; fall back to the build tree.
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/loom")
    }

    convenience init(_ arguments: [String], environment: [String: String] = [:]) throws {
        var env = ["PATH": "/usr/bin:/bin"]
        env.merge(environment) { $1 }
        try self.init(executable: Self.executableURL, arguments, environment: env)
    }

    /// Runs another program the same way (a fixture server); `environment` nil: the tests' own.
    init(executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stdoutURL = directory.appendingPathComponent("stdout")
        stderrURL = directory.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits until loom logs that a listener is up; returns its port.
    func waitUntilListening(timeout: Double = 20) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            for line in stderr.split(separator: "\n") where line.contains("\"msg\":\"listening\"") {
                if let range = line.range(of: #""address":"[^"]*:(\d+)""#, options: .regularExpression) {
                    let match = line[range]
                    let digits = match.dropLast().reversed().prefix { $0.isNumber }.reversed()
                    if let port = Int(String(digits)) { return port }
                }
            }
            guard process.isRunning else { throw LoomProcessError.exited(process.terminationStatus, stderr) }
            usleep(50_000)
        }
        throw LoomProcessError.timeout(stderr)
    }

    /// Waits until the process prints a line starting with `prefix`; returns the rest of it.
    func waitForLine(startingWith prefix: String, timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line.dropFirst(prefix.count)) }
            guard process.isRunning else { throw LoomProcessError.exited(process.terminationStatus, stderr) }
            usleep(20_000)
        }
        throw LoomProcessError.timeout(stderr)
    }

    /// Waits for the process to exit; returns its status (nil if it did not exit in time).
    func waitForExit(timeout: Double = 20) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Peak resident memory of the process in KiB (Linux `VmHWM`).
    var peakResidentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// Runs loom to completion (for `validate`, `version`, `--help`).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 30) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try LoomProcess(arguments, environment: environment)
        guard let status = process.waitForExit(timeout: timeout) else { throw LoomProcessError.timeout(process.stderr) }
        return (status, process.stdout, process.stderr)
    }
}

enum LoomProcessError: Error {
    case exited(Int32, String)
    case timeout(String)
}

/// A free TCP port on 127.0.0.1 (bound then released; fine for tests on a quiet loopback).
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Writes `text` to a new temporary file with `name` and returns its path.
func temporaryFile(named name: String, _ text: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-cfg-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}
