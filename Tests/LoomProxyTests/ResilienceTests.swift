import Foundation
import LoomConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import LoomProxy

/// Upstream resilience through a running proxy, with real backends that fail on command:
/// retries (a backend killed under load, bodies replayed, retryable statuses, per-try
/// timeouts), active health checks, backups, and the 503 + `Retry-After` of open breakers
/// and ejections.
extension ProxyE2E {
    @Suite struct ResilienceTests {
        /// A backend answering every request head with `response` (nothing at all with ""; then
        /// closing, with `closeAfter`: a crash mid-request seen from the proxy).
        static func withRawBackend(_ response: String, closeAfter: Bool, _ body: (RawBackend) async throws -> Void) async throws {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let dropper = RawBackend(group: group, response: response, closeAfter: closeAfter)
            do {
                try await dropper.start()
                try await body(dropper)
            } catch {
                await dropper.stop()
                try? await group.shutdownGracefully()
                throw error
            }
            await dropper.stop()
            try? await group.shutdownGracefully()
        }

        /// Request heads `backend` received with `method` (its log runs heads and bodies of
        /// every connection together).
        static func heads(_ backend: RawBackend, method: String) -> Int {
            backend.received.withLockedValue { $0.components(separatedBy: "\(method) /").count - 1 }
        }

        /// The test backend's body checksum of `bytes`.
        static func checksum(_ bytes: [UInt8]) -> String {
            String(bytes.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) })
        }

        /// Four keep-alive clients send 150 GETs each while one of three backends is killed
        /// (its open connections cut, its port refusing): every request is answered 200, the
        /// cut ones by a retry on another backend.
        @Test func killingOneOfThreeBackendsUnderLoadLosesNoIdempotentRequest() async throws {
            try await E2E.withBackends(3, dialect: .loomYAML, """
                upstreams:
                  - name: app
                    endpoints: ["127.0.0.1:{port0}", "127.0.0.1:{port1}", "127.0.0.1:{port2}"]
                    outlier_detection: {consecutive_failures: 2, base_ejection_time: 30s}
                    retry: {max_retries: 2, backoff_base: 2ms, backoff_max: 10ms}
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let statuses = NIOLockedValueBox<[Int]>([])
                let group = DispatchGroup()
                for client in 0..<4 {
                    DispatchQueue.global().async(group: group) {
                        guard let connection = try? RawClient(port: proxy.port) else {
                            statuses.withLockedValue { $0.append(-1) }
                            return
                        }
                        for index in 0..<150 {
                            let status = (try? connection.send("GET /delay?ms=3&c=\(client)&i=\(index) HTTP/1.1\r\nHost: a\r\n\r\n"))
                                .flatMap { try? connection.readResponse().status } ?? -1
                            statuses.withLockedValue { $0.append(status) }
                            if status != 200 { return }
                        }
                    }
                }
                #expect(await E2E.eventually(timeout: .seconds(20)) { statuses.withLockedValue(\.count) >= 150 })
                let beforeKill = backends[2].requestURIs.withLockedValue(\.count)
                await backends[2].kill()
                await withCheckedContinuation { continuation in group.notify(queue: .global()) { continuation.resume() } }
                let all = statuses.withLockedValue { $0 }
                #expect(all.count == 600 && all.allSatisfy { $0 == 200 }, "\(all.filter { $0 != 200 }.count) failures of \(all.count)")
                #expect(beforeKill > 0, "the killed backend had its share before")
            }
        }

        /// A POST whose first endpoint drops the connection is sent again, body intact, on a
        /// route that allows it; without that, a POST is not resent once it reached an
        /// endpoint, but a connect failure (nothing reached anyone) is retried for any method.
        @Test func retriedBodiesArriveIntactAndOnlyWhenAllowed() async throws {
            try await Self.withRawBackend("", closeAfter: true) { dropper in
                let closed = try E2E.closedPort()
                try await E2E.withBackends(1, dialect: .loomYAML, """
                    upstreams:
                      - {name: pay, endpoints: ["127.0.0.1:\(dropper.port)", "127.0.0.1:{port0}"], retry: {backoff_base: 1ms, backoff_max: 1ms}}
                      - {name: strict, endpoints: ["127.0.0.1:\(dropper.port)"]}
                      - {name: refused, endpoints: ["127.0.0.1:\(closed)", "127.0.0.1:{port0}"]}
                    routes:
                      - {id: pay, path: /pay, upstream: pay, retry_non_idempotent: true}
                      - {id: strict, path: /strict, upstream: strict}
                      - {id: refused, path: /refused, upstream: refused}
                    """) { _, proxy in
                    let body = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
                    func post(_ path: String) throws -> RawResponse {
                        let client = try RawClient(port: proxy.port)
                        try client.send(Array("POST \(path) HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
                        return try client.readResponse()
                    }
                    for _ in 0..<4 {
                        let response = try post("/pay")
                        #expect(response.status == 200)
                        let echoed = try EchoedRequest(response)
                        #expect(echoed.bodyBytes == body.count && echoed.checksum == Self.checksum(body))
                    }
                    #expect(Self.heads(dropper, method: "POST") >= 2, "each loop's rotation started at the dropper")

                    let dropped = Self.heads(dropper, method: "POST")
                    #expect(try post("/strict").status == 502)
                    #expect(Self.heads(dropper, method: "POST") == dropped + 1, "a POST is not resent by default")
                    // A GET is: once (the default max_retries), to the same endpoint when it is the only one.
                    #expect(try proxy.get("/strict").status == 502)
                    #expect(Self.heads(dropper, method: "GET") == 2)

                    for _ in 0..<4 {
                        let response = try post("/refused")
                        #expect(response.status == 200)
                        #expect(try EchoedRequest(response).bodyBytes == body.count)
                    }
                }
            }
        }

        /// A status listed in `retryable_codes` sends the request to another endpoint; the
        /// client never sees it. Unlisted, it goes through as it is.
        @Test func retryableStatusesGoToAnotherEndpoint() async throws {
            try await Self.withRawBackend("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", closeAfter: false) { busy in
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams:
                  - {name: retrying, endpoints: ["127.0.0.1:\(busy.port)", "127.0.0.1:{port0}"], retry: {retryable_codes: [503], backoff_base: 1ms, backoff_max: 1ms}}
                  - {name: plain, endpoints: ["127.0.0.1:\(busy.port)", "127.0.0.1:{port0}"]}
                routes:
                  - {id: retrying, path: "/r/*", upstream: retrying}
                  - {id: plain, path: "/p/*", upstream: plain}
                """) { _, proxy in
                let retried = try (0..<6).map { try proxy.get("/r/\($0)").status }
                #expect(retried == Array(repeating: 200, count: 6))
                let plain = try (0..<6).map { try proxy.get("/p/\($0)").status }
                #expect(plain.contains(503) && plain.contains(200), "\(plain)")
            }
            }
        }

        /// An endpoint that accepts and never answers is abandoned after the per-try timeout,
        /// long before the response-header timeout, and the request is answered by another.
        @Test func perTryTimeoutMovesOn() async throws {
            try await Self.withRawBackend("", closeAfter: false) { silent in
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams:
                  - {name: app, endpoints: ["127.0.0.1:\(silent.port)", "127.0.0.1:{port0}"], retry: {per_try_timeout: 200ms, backoff_base: 1ms, backoff_max: 1ms}}
                routes: [{id: all, upstream: app}]
                """) { _, proxy in
                for index in 0..<4 {
                    let started = ContinuousClock.now
                    let response = try proxy.get("/t/\(index)")
                    #expect(response.status == 200)
                    #expect(ContinuousClock.now - started < .seconds(2))
                }
                #expect(Self.heads(silent, method: "GET") >= 2, "each loop tried the silent endpoint first")
            }
            }
        }

        /// A connect still pending when the per-try timeout moves the request on must not act
        /// on the request when it finally fails (or succeeds): the answer streams from the
        /// endpoint that took over, whole, and the client connection stays up.
        @Test func aConnectAbandonedByThePerTryTimeoutStaysOutOfTheWay() async throws {
            let listener = try HangingListener()
            defer { listener.stop() }
            try #require(listener.hangs, "could not make a connect hang on this machine")
            try await E2E.withBackends(1, dialect: .loomYAML, """
                server: {worker_threads: 1, timeouts: {connect: 800ms}}
                upstreams:
                  - {name: app, endpoints: ["127.0.0.1:\(listener.port)", "127.0.0.1:{port0}"], retry: {per_try_timeout: 200ms, backoff_base: 1ms, backoff_max: 1ms}}
                routes: [{id: all, upstream: app}]
                """) { _, proxy in
                let client = try RawClient(port: proxy.port)
                // The body streams for longer than the abandoned connect takes to time out.
                try client.send("GET /stream?bytes=16000000 HTTP/1.1\r\nHost: a\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                var received = 0
                for _ in 0..<100 {
                    received += client.readBody(count: 160_000) { _ in }
                    try await Task.sleep(for: .milliseconds(12))
                }
                #expect(received == 16_000_000, "the body arrived whole")
                try client.send("GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(try client.readResponse().status == 200, "and the connection is still up")
            }
        }

        /// A client that uploads slowly is not the endpoint's fault: the per-try timeout waits
        /// for the body, and no breaker opens.
        @Test func aSlowUploadIsNotBlamedOnTheEndpoint() async throws {
            try await E2E.withBackends(1, dialect: .loomYAML, """
                upstreams:
                  - {name: app, endpoints: ["127.0.0.1:{port0}"], retry: {per_try_timeout: 300ms}, circuit_breaker: {failure_threshold: 1}}
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let client = try RawClient(port: proxy.port)
                try client.send("PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
                for byte in "abcde" {
                    try await Task.sleep(for: .milliseconds(200))
                    try client.send(String(byte))
                }
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(try EchoedRequest(response).bodyBytes == 5)
                #expect(backends[0].requestURIs.withLockedValue(\.count) == 1, "sent once")
                #expect(try proxy.get("/after").status == 200, "the breaker stayed closed")
            }
        }

        /// Which backend serves each of `count` requests ("backend0", …; the status when
        /// loom answered itself).
        static func servedBy(_ proxy: ProxyHarness, _ backends: [TestBackend], count: Int = 8) throws -> [String] {
            try (0..<count).map { try String(E2E.forwarded(proxy, backends, "GET /s/\($0) HTTP/1.1\r\nHost: a\r\n\r\n").prefix(8)) }
        }

        /// Active checks take an endpoint whose `/health` fails out of service (while it still
        /// answers traffic, so nothing else could have), and bring it back when it passes.
        @Test func healthChecksTakeAnEndpointOutAndBringItBack() async throws {
            try await E2E.withBackends(2, dialect: .loomYAML, """
                upstreams:
                  - name: app
                    endpoints: ["127.0.0.1:{port0}", "127.0.0.1:{port1}"]
                    health_check: {path: /health, interval: 50ms, timeout: 500ms, unhealthy_threshold: 2, healthy_threshold: 2}
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let initial = try Self.servedBy(proxy, backends)
                #expect(Set(initial) == ["backend0", "backend1"])
                backends[1].healthStatus.withLockedValue { $0 = 503 }
                #expect(await E2E.eventually { (try? Self.servedBy(proxy, backends)) == Array(repeating: "backend0", count: 8) })
                backends[1].healthStatus.withLockedValue { $0 = 200 }
                #expect(await E2E.eventually { (try? Self.servedBy(proxy, backends))?.contains("backend1") == true })
            }
        }

        /// TCP checks: a backend that stops accepting connections is taken out of service
        /// by the checks alone (retries are off, so nothing else could hide it), and comes
        /// back when it listens again on the same port.
        @Test func tcpHealthChecksFollowWhetherTheEndpointAccepts() async throws {
            try await E2E.withBackends(2, dialect: .loomYAML, """
                upstreams:
                  - name: app
                    endpoints: ["127.0.0.1:{port0}", "127.0.0.1:{port1}"]
                    health_check: {type: tcp, interval: 50ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1}
                    retry: {max_retries: 0}
                routes: [{id: all, upstream: app}]
                """) { backends, proxy in
                let port = backends[1].port
                await backends[1].kill()
                #expect(await E2E.eventually { (try? Self.servedBy(proxy, backends)) == Array(repeating: "backend0", count: 8) })
                try await backends[1].start(port: port)
                #expect(await E2E.eventually { (try? Self.servedBy(proxy, backends))?.contains("backend1") == true })
            }
        }

        /// A backup takes every request while the primary fails its checks, and hands back.
        @Test func backupTakesOverAndHandsBack() async throws {
            try await E2E.withBackends(2, dialect: .warpDriveTOML, """
                [upstreams.app]
                [[upstreams.app.instances]]
                host = "127.0.0.1"
                port = {port0}
                [[upstreams.app.instances]]
                host = "127.0.0.1"
                port = {port1}
                backup = true
                [upstreams.app.health]
                path = "/health"
                interval_secs = 1
                timeout_secs = 1
                unhealthy_threshold = 1
                healthy_threshold = 1
                [[routes]]
                path_prefix = "/"
                upstream = "app"
                """) { backends, proxy in
                let initial = try Self.servedBy(proxy, backends)
                #expect(initial == Array(repeating: "backend0", count: 8))
                backends[0].healthStatus.withLockedValue { $0 = 500 }
                #expect(await E2E.eventually(timeout: .seconds(5)) { (try? Self.servedBy(proxy, backends)) == Array(repeating: "backend1", count: 8) })
                backends[0].healthStatus.withLockedValue { $0 = 200 }
                #expect(await E2E.eventually(timeout: .seconds(5)) { (try? Self.servedBy(proxy, backends)) == Array(repeating: "backend0", count: 8) })
            }
        }

        /// Two failures open the breaker: the next request is answered 503 with `Retry-After`
        /// without trying the endpoint; after the timeout one probe goes through again.
        @Test func openBreakerAnswers503WithRetryAfter() async throws {
            let closed = try E2E.closedPort()
            var configuration = ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: closed)])
            configuration.upstreams[0].circuitBreaker = CircuitBreakerSettings(failureThreshold: 2, successThreshold: 1, timeout: .milliseconds(800))
            configuration.upstreams[0].retry.maxRetries = 0
            configuration.server.workerThreads = 1
            try await E2E.withProxy(configuration) { proxy in
                #expect(try proxy.get("/a").status == 502)
                #expect(try proxy.get("/b").status == 502)
                let open = try proxy.get("/c")
                #expect(open.status == 503)
                #expect(open.header("retry-after") == "1")
                #expect(E2E.json(open)["error"] as? String == "service_unavailable")
                try await Task.sleep(for: .milliseconds(1_000))
                #expect(try proxy.get("/d").status == 502, "the half-open probe reached the endpoint")
                #expect(try proxy.get("/e").status == 503, "and its failure reopened the breaker")
            }
        }

        /// Consecutive failures eject the endpoint for the base ejection time.
        @Test func ejectedEndpointAnswers503UntilItsTimeIsUp() async throws {
            let closed = try E2E.closedPort()
            var configuration = ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: closed)])
            configuration.upstreams[0].outlierDetection = OutlierDetectionSettings(consecutiveFailures: 2, baseEjectionTime: .seconds(30))
            configuration.upstreams[0].retry.maxRetries = 0
            try await E2E.withProxy(configuration) { proxy in
                #expect(try proxy.get("/a").status == 502)
                #expect(try proxy.get("/b").status == 502)
                let ejected = try proxy.get("/c")
                #expect(ejected.status == 503)
                let after = Int(ejected.header("retry-after") ?? "") ?? 0
                #expect((29...30).contains(after), "Retry-After \(after)")
            }
        }
    }
}
