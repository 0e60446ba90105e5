import Foundation
import LoomConfig
import LoomWasm
import LoomFilters
import NIOCore
import NIOPosix
import NIOSSL
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import LoomProxy

/// The end-to-end data-path suites (`ForwardingHeadersTests`, `SmugglingTests`, …) nest in
/// this one so they run one after another: they are timing-sensitive and share two cores.
@Suite(.serialized) enum ProxyE2E {}

/// Setup and guaranteed teardown for end-to-end tests: every helper stops what it started,
/// whether the body returns or throws, so one failing test cannot leak listeners or threads.
enum E2E {
    /// A `TestBackend` (TCP, or a unix socket at `unixPath`) behind a proxy configured by
    /// `configure`, with the catch-all route or `route`.
    static func withBackend(
        idleClose: TimeAmount? = nil, unixPath: String? = nil, route: RouteConfig? = nil,
        configure: (inout LoomConfiguration) -> Void = { _ in },
        _ body: (TestBackend, ProxyHarness) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = TestBackend(group: group, idleClose: idleClose)
        do {
            try await backend.start(unixPath: unixPath)
            let endpoint: Endpoint = unixPath.map { .unix(path: $0) } ?? .tcp(host: "127.0.0.1", port: backend.port)
            try await withProxy(ProxyHarness.config(endpoints: [endpoint], route: route, configure: configure)) { proxy in
                try await body(backend, proxy)
            }
        } catch {
            await backend.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        await backend.stop()
        try? await group.shutdownGracefully()
    }

    /// A `RawBackend` answering every request head with `response`, behind a proxy.
    static func withRawBackend(
        _ response: String, closeAfter: Bool = true, halfCloseAfter: Bool = false, configure: (inout LoomConfiguration) -> Void = { _ in },
        _ body: (RawBackend, ProxyHarness) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = RawBackend(group: group, response: response, closeAfter: closeAfter, halfCloseAfter: halfCloseAfter)
        do {
            try await backend.start()
            let config = ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: backend.port)], configure: configure)
            try await withProxy(config) { proxy in try await body(backend, proxy) }
        } catch {
            await backend.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        await backend.stop()
        try? await group.shutdownGracefully()
    }

    /// Starts `count` echo backends, loads `text` (with `{port0}`, `{port1}`, … replaced by
    /// their ports, and `{plugin:NAME}` by the path of test plugin NAME, built on first use) and runs `body` against a proxy for it.
    static func withBackends(
        _ count: Int, dialect: ConfigDialect, _ text: String, filters: FilterRegistry = .builtIn, environment: [String: String] = [:],
        backendTLS: NIOSSLContext? = nil, _ body: ([TestBackend], ProxyHarness) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backends = (0..<count).map { _ in TestBackend(group: group, tls: backendTLS) }
        do {
            for backend in backends { try await backend.start() }
            var text = text
            for (index, backend) in backends.enumerated() { text = text.replacingOccurrences(of: "{port\(index)}", with: String(backend.port)) }
            for (name, path) in try PluginFixtures.placeholders(in: text) { text = text.replacingOccurrences(of: "{plugin:\(name)}", with: path) }
            let result = ConfigLoader.load(
                text: text, fileName: dialect == .loomYAML ? "t.yaml" : "t.toml", dialect: dialect, environment: environment, checks: .full)
            let configuration = try #require(result.configuration, "\(result.diagnostics)")
            try await E2E.withProxy(configuration, filters: filters) { proxy in try await body(backends, proxy) }
        } catch {
            for backend in backends { await backend.stop() }
            try? await group.shutdownGracefully()
            throw error
        }
        for backend in backends { await backend.stop() }
        try? await group.shutdownGracefully()
    }

    /// Which backend answered (the one whose log of request targets grew) and the
    /// request-target it received; the status when loom answered by itself.
    static func forwarded(_ proxy: ProxyHarness, _ backends: [TestBackend], _ raw: String) throws -> String {
        let before = backends.map { $0.requestURIs.withLockedValue(\.count) }
        let response = try proxy.request(raw)
        guard response.status == 200 else { return "\(response.status)" }
        let echoed = try EchoedRequest(response)
        let index = backends.indices.first { backends[$0].requestURIs.withLockedValue(\.count) > before[$0] }
        return "backend\(index.map(String.init) ?? "?") \(echoed.uri)"
    }

    /// Expects `request` (raw, or a path for a plain GET) to reach `expected` (see `forwarded`).
    static func expectForwarded(
        _ proxy: ProxyHarness, _ backends: [TestBackend], _ request: String, _ expected: String,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) throws {
        let raw = request.hasPrefix("/") ? "GET \(request) HTTP/1.1\r\nHost: a\r\n\r\n" : request
        #expect(try forwarded(proxy, backends, raw) == expected, sourceLocation: sourceLocation)
    }

    /// A proxy for `configuration`, stopped afterwards.
    static func withProxy(
        _ configuration: LoomConfiguration, filters: FilterRegistry = .builtIn, metrics: LoomMetrics? = nil, _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        let proxy = try await ProxyHarness.start(configuration, filters: filters, metrics: metrics)
        do {
            try await body(proxy)
        } catch {
            await proxy.stop()
            throw error
        }
        await proxy.stop()
    }

    /// A loopback port nobody listens on (bound, then closed).
    /// A fixture program (Fixtures/NAME.py, run with `arguments`) that prints "port N" once
    /// it listens, and a proxy for `yaml` with `{port}` replaced by that port (and
    /// `{plugin:NAME}` by the path of test plugin NAME).
    static func withFixtureServer(
        _ name: String, _ arguments: [String] = ["server"], yaml: String, metrics: LoomMetrics? = nil, _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        let server = try LoomProcess(executable: URL(fileURLWithPath: "/usr/bin/env"), ["python3", try fixture(name)] + arguments)
        defer { server.signal(SIGKILL) }
        let port = try server.waitForLine(startingWith: "port ")
        var text = yaml.replacingOccurrences(of: "{port}", with: port)
        for (name, path) in try PluginFixtures.placeholders(in: text) { text = text.replacingOccurrences(of: "{plugin:\(name)}", with: path) }
        let result = ConfigLoader.load(text: text, fileName: "t.yaml", dialect: .loomYAML, environment: [:], checks: .full)
        let configuration = try #require(result.configuration, "\(result.diagnostics)")
        try await withProxy(configuration, metrics: metrics, body)
    }

    /// The path of Fixtures/NAME.py.
    static func fixture(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: "py", subdirectory: "Fixtures")).path
    }

    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw RawClientError.socket(errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The `request_id` of a Loom JSON error body.
    static func jsonRequestID(_ response: RawResponse) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else { return nil }
        return object["request_id"] as? String
    }

    /// The JSON error body's fields, for checks on `error` and `status`.
    static func json(_ response: RawResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    /// The checksum `TestBackend` computes over a request body.
    static func checksum<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var sum: UInt64 = 0
        for byte in bytes { sum = sum &* 31 &+ UInt64(byte) }
        return String(sum)
    }

    /// `TestBackend`'s `/stream` byte pattern.
    static func streamPattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 % 251) }
    }

    /// Waits until `condition` holds or `timeout` passes (for effects seen on other threads).
    static func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// Process `pid` has ended: gone, or a zombie nobody has reaped yet.
    static func isGone(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return true }
        return status.contains("State:\tZ")
    }

    /// Runs curl with `arguments`; returns its exit status, stdout and stderr.
    static func curl(_ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
        try run("/usr/bin/curl", ["--silent", "--show-error", "--max-time", "20"] + arguments)
    }

    /// Runs `executable` (a path, or a name looked up on PATH) with `arguments`; returns its
    /// exit status, stdout and stderr.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = (executable.hasPrefix("/") ? [] : [executable]) + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stdout while curl runs so a large output cannot fill the pipe and block it.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, stdout, String(decoding: stderr, as: UTF8.self))
    }
}

/// A TCP listener whose accept queue is full and never drained, so new connections to it hang
/// in SYN-SENT: the way to make an upstream connect time out without a routable black hole.
///
/// Linux drops a SYN while the listener's accept queue is full (`backlog` 0 admits one
/// connection), so after filling it a connect neither succeeds nor fails until it times out.
/// `hangs` says whether that was observed on this machine.
final class HangingListener {
    let port: Int
    private let listenFD: Int32
    private var fillers: [Int32] = []
    private(set) var hangs = false

    init() throws {
        listenFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listenFD
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0, listen(fd, 0) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard result == 0 else {
            close(listenFD)
            throw RawClientError.socket(errno)
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        // Fill the queue until a probe connect stays pending for a while.
        for _ in 0..<8 {
            let probe = Self.startConnect(port: port)
            var poller = pollfd(fd: probe, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, 300)
            if ready == 0 {
                close(probe)
                hangs = true
                break
            }
            fillers.append(probe)
        }
    }

    /// A non-blocking connect in progress (or completed) to `port`.
    private static func startConnect(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return fd
    }

    func stop() {
        for fd in fillers { close(fd) }
        fillers = []
        close(listenFD)
    }
}
