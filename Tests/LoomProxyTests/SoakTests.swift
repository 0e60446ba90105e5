import Foundation
import LoomConfig
import NIOConcurrencyHelpers
import LoomTestSupport
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// A bounded, seeded, randomized end-to-end run: several client threads drive a real proxy
    /// in front of a real `TestBackend` with a random mix of well-formed, pipelined, streamed,
    /// aborted, half-closed and malformed requests, and every response is checked against the
    /// request it answers (unique ids in the target and in `X-Request-ID`).
    ///
    /// Each thread draws from its own generator seeded by `(seed, thread)`, so the operation
    /// sequence of every thread is reproducible; only their interleaving is not. A failure
    /// names the seed, thread and operation index. Override with `LOOM_SOAK_SEED`,
    /// `LOOM_SOAK_OPS` (operations per thread) and `LOOM_SOAK_THREADS` to replay or soak harder.
    @Suite(.serialized) struct SoakTests {
        static let defaultSeed: UInt64 = 0x10_0C_5EED
        static let defaultThreads = 4
        static let defaultOperations = 100

        @Test(.timeLimit(.minutes(1)))
        func seededRandomMixIsAnsweredCorrectlyAndLeavesProxyHealthy() async throws {
            let environment = ProcessInfo.processInfo.environment
            let seed = environment["LOOM_SOAK_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed
            let operations = environment["LOOM_SOAK_OPS"].flatMap { Int($0) } ?? Self.defaultOperations
            let threads = environment["LOOM_SOAK_THREADS"].flatMap { Int($0) } ?? Self.defaultThreads
            print("soak: seed \(seed), \(threads) threads × \(operations) operations")
            let started = ContinuousClock.now

            try await E2E.withBackend { backend, proxy in
                let port = proxy.port
                let tallies = await Self.onThreads(threads) { thread in
                    SoakWorker(seed: seed, thread: thread, port: port).run(operations: operations)
                }
                let failures = tallies.flatMap(\.failures)
                for failure in failures { #expect(Bool(false), "\(failure)") }

                // Still serving after the mix.
                let final = try proxy.get("/echo?final", headers: ["X-Request-ID: soak-final"])
                #expect(final.status == 200, "seed \(seed): final GET \(final.bodyText)")
                #expect((try? EchoedRequest(final).uri) == "/echo?final", "seed \(seed): final GET")

                // One access-log record per request the proxy answered or rejected, plus one
                // per aborted request (499; 400 for a truncated body; 200 if the response had
                // started), and the final GET.
                let expectedLogs = tallies.reduce(1) { $0 + $1.expectedLogs }
                _ = await E2E.eventually { proxy.logs.all.count >= expectedLogs }
                let records = proxy.logs.all
                #expect(records.count == expectedLogs, "seed \(seed): \(records.count) log records, expected \(expectedLogs)")
                var statusByID: [String: [String]] = [:]
                for record in records {
                    guard let id = record["request_id"].map({ "\($0)" }) else { continue }
                    statusByID[id, default: []].append(record["status"].map { "\($0)" } ?? "-")
                }
                for tally in tallies {
                    for (id, statuses) in tally.loggedIDs {
                        let logged = statusByID[id] ?? []
                        #expect(logged.count == 1 && statuses.contains(logged.first ?? ""),
                                "seed \(seed): \(id) logged as \(logged), expected one of \(statuses)")
                    }
                }
                let gatewayErrors = records.filter { ["502", "503", "504"].contains($0["status"].map { "\($0)" } ?? "") }
                #expect(gatewayErrors.isEmpty, "seed \(seed): gateway errors logged: \(gatewayErrors)")

                // Pool reuse: new upstream connections come only from concurrency (at most
                // one per client thread per event loop) and from exchanges that break one.
                let requests = tallies.reduce(1) { $0 + $1.requests }
                let breakers = tallies.reduce(0) { $0 + $1.upstreamBreakers }
                let accepted = backend.connectionsAccepted
                #expect(accepted <= breakers + 2 * threads + 1,
                        "seed \(seed): backend accepted \(accepted) connections for \(requests) requests, \(breakers) broken")
                #expect(accepted * 2 < requests, "seed \(seed): backend accepted \(accepted) connections for \(requests) requests")
                let smuggled = backend.requestURIs.withLockedValue { $0 }.filter { $0.hasPrefix("/smuggled") }
                #expect(smuggled.isEmpty, "seed \(seed): smuggled requests reached the backend: \(smuggled)")

                // Every client is gone, so every downstream socket must be closed too (a
                // connection stuck open would show as ESTABLISHED or CLOSE_WAIT on the proxy).
                let closed = await E2E.eventually(timeout: .seconds(5)) { Self.openSockets(localPort: port).isEmpty }
                #expect(closed, "seed \(seed): downstream sockets left open: \(Self.openSockets(localPort: port))")

                let elapsed = ContinuousClock.now - started
                print("soak: seed \(seed): \(requests) requests, \(accepted) upstream connections (\(breakers) broken), "
                    + "\(records.count) log records, \(failures.count) failures, \(elapsed)")
            }
        }

        /// Runs `body` on `count` dedicated threads and collects their results. The clients
        /// block on sockets, which must not happen on the cooperative pool (two threads here).
        static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> SoakTally) async -> [SoakTally] {
            let results = NIOLockedValueBox<[SoakTally]>([])
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let group = DispatchGroup()
                for index in 0..<count {
                    group.enter()
                    let thread = Thread {
                        let tally = body(index)
                        results.withLockedValue { $0.append(tally) }
                        group.leave()
                    }
                    thread.stackSize = 4 << 20
                    thread.start()
                }
                group.notify(queue: .global()) { continuation.resume() }
            }
            return results.withLockedValue { $0 }
        }

        /// TCP sockets on `localPort` (IPv4) that are established or waiting for us to close.
        static func openSockets(localPort: Int) -> [String] {
            guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return [] }
            let suffix = ":" + String(format: "%04X", localPort)
            return table.split(separator: "\n").dropFirst().compactMap { line in
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[1].hasSuffix(suffix), fields[3] == "01" || fields[3] == "08" else { return nil }
                return "\(fields[1])→\(fields[2]) state \(fields[3])"
            }
        }
    }
}

/// What one soak thread did, for the checks made after all threads finished.
struct SoakTally: Sendable {
    /// Reproducible descriptions of every failed check.
    var failures: [String] = []
    /// Requests that reached the proxy (answered, rejected or aborted).
    var requests = 0
    /// Access-log records the thread's requests must produce.
    var expectedLogs = 0
    /// Request ids we chose, with the statuses the access log may record for each.
    var loggedIDs: [(String, [String])] = []
    /// Exchanges that legitimately cost an upstream connection (aborted or invalid bodies).
    var upstreamBreakers = 0
}

/// The operations a soak thread picks from, with their relative weights.
enum SoakOperation: String, CaseIterable {
    case get, pipelined, postLength, postChunked, expectContinue, stream, status, delay
    case abort, halfClose, malformed, http10

    var weight: Int {
        switch self {
        case .get: 12
        case .pipelined, .postLength, .postChunked: 10
        case .stream, .status: 8
        case .expectContinue, .delay: 6
        case .abort, .halfClose, .malformed, .http10: 5
        }
    }

    static func pick<R: RandomNumberGenerator>(using random: inout R) -> SoakOperation {
        var roll = Int.random(in: 0..<allCases.reduce(0) { $0 + $1.weight }, using: &random)
        for operation in allCases {
            if roll < operation.weight { return operation }
            roll -= operation.weight
        }
        return .get
    }
}

/// One soak client thread: performs a seeded random sequence of operations against the proxy,
/// reusing its keep-alive connection where the protocol allows, and tallies what it checked.
///
/// Runs entirely on its own thread with blocking `RawClient`s; results are data (`SoakTally`),
/// turned into test expectations by the test task afterwards.
final class SoakWorker {
    let seed: UInt64
    let thread: Int
    let port: Int
    private var random: SplitMix64
    /// The current keep-alive connection, if the last operation left one usable.
    private var client: RawClient?
    private var tally = SoakTally()
    private var operationIndex = 0
    private var operation = SoakOperation.get

    init(seed: UInt64, thread: Int, port: Int) {
        self.seed = seed
        self.thread = thread
        self.port = port
        self.random = SplitMix64(state: seed &+ UInt64(thread) &* 0x1_0000_0001)
    }

    func run(operations: Int) -> SoakTally {
        for index in 0..<operations {
            operationIndex = index
            operation = SoakOperation.pick(using: &random)
            do {
                try perform(operation)
            } catch {
                check(false, "threw \(error)")
                client = nil
            }
        }
        client = nil
        return tally
    }

    // MARK: Bookkeeping

    private var label: String { "seed \(seed) thread \(thread) op \(operationIndex) (\(operation.rawValue))" }

    private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { tally.failures.append("\(label): \(message())") }
    }

    /// A unique id for request `part` of this operation, usable in a target and as X-Request-ID.
    private func requestID(_ part: Int = 0) -> String { "s\(seed)-t\(thread)-o\(operationIndex)-r\(part)" }

    /// Counts a request the proxy will answer (one log record, with one of `statuses`).
    private func expectAnswer(_ id: String?, statuses: [Int]) {
        tally.requests += 1
        tally.expectedLogs += 1
        if let id { tally.loggedIDs.append((id, statuses.map(String.init))) }
    }

    /// The keep-alive connection, or (sometimes at random, and when there is none) a new one;
    /// dropping the old one closes it while idle, which the proxy must take in stride.
    private func connection() throws -> RawClient {
        if let client, Int.random(in: 0..<8, using: &random) != 0 { return client }
        let fresh = try RawClient(port: port)
        fresh.setSendTimeout(5)
        client = fresh
        return fresh
    }

    private func head(_ method: String, _ target: String, id: String, version: String = "1.1", _ extra: [String] = []) -> String {
        "\(method) \(target) HTTP/\(version)\r\nHost: test.local\r\nX-Request-ID: \(id)\r\n"
            + extra.map { $0 + "\r\n" }.joined() + "\r\n"
    }

    private func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < count {
                var word = random.next()
                let n = min(8, count - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
                offset += n
            }
        }
        return bytes
    }

    /// Sends `bytes` in 1-4 writes split at random points (heads and bodies cross reads).
    private func sendSplit(_ bytes: [UInt8], on client: RawClient) throws {
        var cuts = (0..<Int.random(in: 0...3, using: &random)).map { _ in Int.random(in: 0...bytes.count, using: &random) }
        cuts = ([0] + cuts.sorted() + [bytes.count])
        for (from, to) in zip(cuts, cuts.dropFirst()) where to > from {
            try client.send(Array(bytes[from..<to]))
        }
    }

    /// Checks an HTTP/1.1 response that must leave the connection open and carry our id.
    private func checkKeptAlive(_ response: RawResponse, id: String) {
        check(response.header("x-request-id") == id, "response for \(id) carries id \(response.header("x-request-id") ?? "none")")
        check(response.header("connection")?.lowercased() != "close", "\(id): unexpected Connection: close")
    }

    /// Checks a `/echo` answer: status, target and (for POSTs) the body the backend saw.
    private func checkEcho(_ response: RawResponse, id: String, method: String, body: [UInt8]? = nil) {
        check(response.status == 200, "\(id): status \(response.status) \(response.bodyText.prefix(200))")
        guard let echoed = try? EchoedRequest(response) else {
            check(false, "\(id): not an echo: \(response.bodyText.prefix(200))")
            return
        }
        check(echoed.method == method && echoed.uri == "/echo?id=\(id)", "\(id): answered \(echoed.method) \(echoed.uri)")
        if let body {
            check(echoed.bodyBytes == body.count, "\(id): backend saw \(echoed.bodyBytes) body bytes, sent \(body.count)")
            check(echoed.checksum == E2E.checksum(body), "\(id): body checksum differs")
        }
    }

    // MARK: Operations

    private func perform(_ operation: SoakOperation) throws {
        switch operation {
        case .get: try get()
        case .pipelined: try pipelined()
        case .postLength: try postLength()
        case .postChunked: try postChunked()
        case .expectContinue: try expectContinue()
        case .stream: try stream()
        case .status: try status()
        case .delay: try delay()
        case .abort: try abort()
        case .halfClose: try halfClose()
        case .malformed: try malformed()
        case .http10: try http10()
        }
    }

    private func get() throws {
        let client = try connection()
        let id = requestID()
        expectAnswer(id, statuses: [200])
        try client.send(head("GET", "/echo?id=\(id)", id: id))
        let response = try client.readResponse()
        checkEcho(response, id: id, method: "GET")
        checkKeptAlive(response, id: id)
    }

    /// 2-5 GETs and HEADs (and now and then a small POST) in one write: answered one by one,
    /// in order.
    private func pipelined() throws {
        let client = try connection()
        let methods = (0..<Int.random(in: 2...5, using: &random)).map { _ in ["GET", "GET", "HEAD", "HEAD", "POST"].randomElement(using: &random)! }
        var burst: [UInt8] = []
        var bodies: [[UInt8]] = []
        for (part, method) in methods.enumerated() {
            expectAnswer(requestID(part), statuses: [200])
            let body = method == "POST" ? randomBytes(Int.random(in: 0...2048, using: &random)) : []
            bodies.append(body)
            let length = method == "POST" ? ["Content-Length: \(body.count)"] : []
            burst += Array(head(method, "/echo?id=\(requestID(part))", id: requestID(part), length).utf8) + body
        }
        try client.send(burst)
        for (part, method) in methods.enumerated() {
            let response = try client.readResponse(headRequest: method == "HEAD")
            checkKeptAlive(response, id: requestID(part))
            if method == "HEAD" {
                check(response.status == 200, "\(requestID(part)): HEAD status \(response.status)")
                check(response.body.isEmpty, "\(requestID(part)): HEAD response with a body")
                check(response.header("content-length") != nil, "\(requestID(part)): HEAD without Content-Length")
            } else {
                checkEcho(response, id: requestID(part), method: method, body: method == "POST" ? bodies[part] : nil)
            }
        }
    }

    private func postLength() throws {
        let client = try connection()
        let id = requestID()
        let body = randomBytes(Int.random(in: 0...200 * 1024, using: &random))
        expectAnswer(id, statuses: [200])
        try sendSplit(Array(head("POST", "/echo?id=\(id)", id: id, ["Content-Length: \(body.count)"]).utf8) + body, on: client)
        let response = try client.readResponse()
        checkEcho(response, id: id, method: "POST", body: body)
        checkKeptAlive(response, id: id)
    }

    /// A chunked body in random chunk sizes, sometimes with extensions and a trailer.
    private func postChunked() throws {
        let client = try connection()
        let id = requestID()
        let body = randomBytes(Int.random(in: 0...200 * 1024, using: &random))
        var wire = Array(head("POST", "/echo?id=\(id)", id: id, ["Transfer-Encoding: chunked"]).utf8)
        var offset = 0
        while offset < body.count {
            let size = min(body.count - offset, Int.random(in: 1...32 * 1024, using: &random))
            var sizeLine = String(size, radix: 16, uppercase: Bool.random(using: &random))
            if Int.random(in: 0..<4, using: &random) == 0 { sizeLine += ";ext=\(offset)" }
            wire += Array("\(sizeLine)\r\n".utf8) + body[offset..<(offset + size)] + Array("\r\n".utf8)
            offset += size
        }
        wire += Array((Bool.random(using: &random) ? "0\r\nX-Soak-Trailer: \(id)\r\n\r\n" : "0\r\n\r\n").utf8)
        expectAnswer(id, statuses: [200])
        try sendSplit(wire, on: client)
        let response = try client.readResponse()
        checkEcho(response, id: id, method: "POST", body: body)
        checkKeptAlive(response, id: id)
    }

    /// `Expect: 100-continue`: the body is sent only after the interim response.
    private func expectContinue() throws {
        let client = try connection()
        let id = requestID()
        let body = randomBytes(Int.random(in: 1...64 * 1024, using: &random))
        expectAnswer(id, statuses: [200])
        try client.send(head("POST", "/echo?id=\(id)", id: id, ["Content-Length: \(body.count)", "Expect: 100-continue"]))
        let interim = try client.readResponse()
        check(interim.status == 100, "\(id): expected 100 Continue, got \(interim.status)")
        try client.send(body)
        let response = try client.readResponse()
        checkEcho(response, id: id, method: "POST", body: body)
        checkKeptAlive(response, id: id)
    }

    /// Up to 2 MiB from `/stream`, by length or chunked: exact count and pattern.
    private func stream() throws {
        let client = try connection()
        let id = requestID()
        let count = Int.random(in: 0...2 * 1024 * 1024, using: &random)
        let chunked = Bool.random(using: &random)
        expectAnswer(id, statuses: [200])
        try client.send(head("GET", "/stream?bytes=\(count)\(chunked ? "&chunked=1" : "")&id=\(id)", id: id))
        var received = 0
        var mismatch: Int?
        let visit = { (slice: ArraySlice<UInt8>) in
            for byte in slice {
                if mismatch == nil, byte != UInt8(truncatingIfNeeded: received % 251) { mismatch = received }
                received += 1
            }
        }
        let head: RawResponse
        if chunked {
            head = try client.readResponse()
            check(head.header("transfer-encoding")?.lowercased() == "chunked", "\(id): chunked stream framed as \(head.headers)")
            visit(head.body[...])
        } else {
            head = try client.readHead()
            check(head.header("content-length") == String(count), "\(id): Content-Length \(head.header("content-length") ?? "none")")
            _ = client.readBody(count: count, visit: visit)
        }
        check(head.status == 200, "\(id): stream status \(head.status)")
        check(received == count, "\(id): streamed \(received) of \(count) bytes")
        check(mismatch == nil, "\(id): stream pattern broken at byte \(mismatch ?? -1)")
        checkKeptAlive(head, id: id)
    }

    private func status() throws {
        let client = try connection()
        let id = requestID()
        let code = [204, 304, 404, 500].randomElement(using: &random)!
        expectAnswer(id, statuses: [code])
        try client.send(head("GET", "/status?code=\(code)&id=\(id)", id: id))
        let response = try client.readResponse()
        check(response.status == code, "\(id): status \(response.status), expected \(code)")
        if code == 204 || code == 304 {
            check(response.header("content-length") == nil && response.header("transfer-encoding") == nil,
                  "\(id): \(code) with body framing \(response.headers)")
        } else {
            check(response.bodyText == "status \(code)", "\(id): body \(response.bodyText.prefix(200))")
        }
        // A stray body after a 204/304 would be read as the next response on this connection.
        checkKeptAlive(response, id: id)
    }

    private func delay() throws {
        let client = try connection()
        let id = requestID()
        let ms = Int.random(in: 0...40, using: &random)
        expectAnswer(id, statuses: [200])
        try client.send(head("GET", "/delay?ms=\(ms)&id=\(id)", id: id))
        let response = try client.readResponse()
        check(response.status == 200 && response.bodyText == "delayed \(ms)", "\(id): \(response.status) \(response.bodyText.prefix(200))")
        checkKeptAlive(response, id: id)
    }

    /// A client that goes away mid-exchange, on its own connection (so the thread's
    /// keep-alive connection survives), with a FIN or a reset: during the request body (a
    /// POST announcing 10000 bytes and sending part of them; logged as 400 or 499), while
    /// waiting for a slow response, or partway through a 2 MiB download (logged as 200 or
    /// 499: the response had started, or even completed into the socket buffers).
    private func abort() throws {
        let aborting = try RawClient(port: port)
        aborting.setSendTimeout(5)
        if Bool.random(using: &random) { aborting.setResetOnClose() }
        let id = requestID()
        tally.upstreamBreakers += 1
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            expectAnswer(id, statuses: [400, 499])
            let partial = randomBytes(Int.random(in: 0..<10_000, using: &random))
            try aborting.send(Array(head("POST", "/echo?id=\(id)", id: id, ["Content-Length: 10000"]).utf8) + partial)
        case 1:
            expectAnswer(id, statuses: [200, 499])
            try aborting.send(head("GET", "/delay?ms=\(Int.random(in: 0...30, using: &random))&id=\(id)", id: id))
        default:
            expectAnswer(id, statuses: [200, 499])
            try aborting.send(head("GET", "/stream?bytes=\(2 * 1024 * 1024)&id=\(id)", id: id))
            _ = aborting.read(count: Int.random(in: 0...256 * 1024, using: &random))
        }
        // Closed when it goes out of scope.
    }

    /// A complete GET, then FIN: the response still arrives, then the proxy closes.
    private func halfClose() throws {
        let client = try connection()
        self.client = nil
        let id = requestID()
        expectAnswer(id, statuses: [200])
        try client.send(head("GET", "/echo?id=\(id)", id: id))
        client.shutdownWrite()
        let response = try client.readResponse()
        checkEcho(response, id: id, method: "GET")
        check(response.header("x-request-id") == id, "response for \(id) carries id \(response.header("x-request-id") ?? "none")")
        check(client.readToEnd().end == .eof, "\(id): connection not closed after half-close")
    }

    /// One of the smuggling suite's malformed requests with a request pipelined behind it:
    /// refused, closed, and the request behind never reaches the backend.
    private func malformed() throws {
        let client = try connection()
        self.client = nil
        let testCase = ProxyE2E.SmugglingTests.cases.randomElement(using: &random)!
        expectAnswer(nil, statuses: [testCase.status])
        if testCase.forwardsHead { tally.upstreamBreakers += 1 }
        try client.send(testCase.raw + "GET /smuggled?id=\(requestID()) HTTP/1.1\r\nHost: test.local\r\n\r\n")
        let response = try client.readResponse()
        check(response.status == testCase.status, "\(testCase.name): status \(response.status), expected \(testCase.status)")
        check(response.header("connection")?.lowercased() == "close", "\(testCase.name): no Connection: close")
        check(client.waitForClose(), "\(testCase.name): connection left open")
    }

    /// HTTP/1.0 without keep-alive: the response, then the proxy closes.
    private func http10() throws {
        let client = try connection()
        self.client = nil
        let id = requestID()
        expectAnswer(id, statuses: [200])
        try client.send(head("GET", "/echo?id=\(id)", id: id, version: "1.0"))
        let response = try client.readResponse()
        checkEcho(response, id: id, method: "GET")
        check(response.header("connection")?.lowercased() == "close", "\(id): HTTP/1.0 response without Connection: close")
        check(client.readToEnd().end == .eof, "\(id): HTTP/1.0 connection not closed")
    }
}
