import Foundation
import LoomConfig
import Testing

extension ProxyE2E {
    /// The upstream pool's own idle timeout: expired connections are closed by the periodic
    /// sweep, and the proxy keeps serving (a regression test for a crash in that sweep).
    @Suite(.serialized) struct PoolTests {
        @Test func idleTimeoutClosesPooledConnectionsAndTrafficContinues() async throws {
            try await E2E.withBackend(configure: { config in
                config.server.workerThreads = 1
                config.upstreams[0].pool.idleTimeout = .milliseconds(500)
            }) { backend, proxy in
                #expect(try proxy.get("/echo/1").status == 200)
                #expect(try proxy.get("/echo/2").status == 200)
                #expect(backend.connectionsAccepted == 1)
                // The sweep runs every second: after 2.5 s the idle connection is gone.
                try await Task.sleep(for: .milliseconds(2500))
                #expect(try proxy.get("/echo/3").status == 200)
                #expect(backend.connectionsAccepted == 2)
            }
        }

        /// A burst needs more connections than `max_idle`: they are kept for the next burst
        /// (closing them at once made every burst reconnect), and the excess is closed once
        /// it has been idle for a second.
        @Test func connectionsBeyondMaxIdleServeTheNextBurstThenAreTrimmed() async throws {
            try await E2E.withBackend(configure: { config in
                config.server.workerThreads = 1
                config.upstreams[0].pool.maxIdle = 1
            }) { backend, proxy in
                func burst() throws {
                    let clients = try (0..<3).map { _ in try RawClient(port: proxy.port, timeout: 5) }
                    for client in clients { try client.send("GET /delay?ms=200 HTTP/1.1\r\nHost: a\r\n\r\n") }
                    for client in clients { #expect(try client.readResponse().status == 200) }
                }
                try burst()
                #expect(backend.connectionsAccepted == 3)
                try burst()
                #expect(backend.connectionsAccepted == 3)
                // Sweeps run every second: by now two have been idle past the grace period.
                try await Task.sleep(for: .milliseconds(2600))
                try burst()
                #expect(backend.connectionsAccepted == 5)
            }
        }

        @Test func maxIdleZeroDisablesReuse() async throws {
            try await E2E.withBackend(configure: { config in
                config.server.workerThreads = 1
                config.upstreams[0].pool.maxIdle = 0
            }) { backend, proxy in
                for index in 0..<3 {
                    let response = try proxy.get("/echo/\(index)")
                    #expect(response.status == 200)
                }
                #expect(backend.connectionsAccepted == 3)
            }
        }
    }
}

extension ProxyE2E {
    /// Clients that stop reading cannot pin a connection (or its unsent bytes) forever.
    @Suite(.serialized) struct SlowReaderTests {
        @Test func closingConnectionIsDroppedWhenTheClientNeverReads() async throws {
            let body = String(repeating: "x", count: 8 * 1024 * 1024)
            let route = RouteConfig(name: "big", match: RouteMatch(path: .prefix("/")), action: .respond(StaticResponse(body: body)))
            var config = LoomConfiguration(origin: .environment, routes: [route])
            config.server.timeouts.idle = .milliseconds(500)
            try await E2E.withProxy(config) { proxy in
                let client = try RawClient(port: proxy.port, timeout: 5)
                try client.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                // Not reading: the 8 MiB answer cannot all leave Loom.
                try await Task.sleep(for: .seconds(2))
                let (received, _) = client.readUntilClose()
                // Loom gave up on this client: it got what the socket buffers held, not all.
                #expect(received.utf8.count < body.utf8.count)
            }
        }
    }
}
