import Foundation
import Testing

/// Process-level behaviour of `loom run`: graceful shutdown with requests in flight, the
/// shutdown deadline, the second-signal fast exit, and bounded memory while streaming bodies
/// far larger than that bound in both directions.
@Suite(.serialized) struct LifecycleTests {
    private func startLoom(backendPort: Int, shutdownTimeout: String, protocol: String = "http") throws -> (LoomProcess, Int) {
        let port = freeLoopbackPort()
        let path = try temporaryFile(named: "gateway.yaml", """
            server:
              shutdown_timeout: \(shutdownTimeout)
              worker_threads: 1
            listeners:
              - name: http
                address: "127.0.0.1:\(port)"
                protocol: \(`protocol`)
            upstreams:
              - name: backend
                endpoints: ["127.0.0.1:\(backendPort)"]
            routes:
              - id: all
                path: /*
                upstream: backend
            """)
        let loom = try LoomProcess(["run", "--config", path])
        _ = try loom.waitUntilListening()
        return (loom, port)
    }

    @Test func sigtermLetsTheRequestInFlightFinishThenExitsZero() async throws {
        try await withBackend { backendPort in
            let (loom, port) = try startLoom(backendPort: backendPort, shutdownTimeout: "10s")
            defer { loom.signal(SIGKILL) }
            let client = try RawClient(port: port, timeout: 10)
            try client.send("GET /delay?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n")
            usleep(300_000)
            loom.signal(SIGTERM)
            usleep(300_000)
            // Listeners are closed at once: new connections are refused.
            #expect(throws: (any Error).self) { _ = try RawClient(port: port, timeout: 1) }
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.bodyText == "delayed 1500")
            // The draining connection is told it will close.
            #expect(response.header("connection") == "close")
            #expect(loom.waitForExit() == 0)
        }
    }

    @Test func sigtermSendsGoawayToHTTP2ClientsAndLetsTheirStreamsFinish() async throws {
        try await withBackend { backendPort in
            let (loom, port) = try startLoom(backendPort: backendPort, shutdownTimeout: "10s", protocol: "h2c")
            defer { loom.signal(SIGKILL) }
            let client = Task { try E2E.run("/usr/bin/nghttp", ["-v", "http://127.0.0.1:\(port)/delay?ms=2500"]) }
            // Time for nghttp to start and send its request (milliseconds, unless the machine is busy).
            try await Task.sleep(for: .milliseconds(1000))
            loom.signal(SIGTERM)
            let result = try await client.value
            let text = String(decoding: result.stdout, as: UTF8.self)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(text.contains("delayed 2500") && text.contains("recv GOAWAY frame"), "\(text)")
            #expect(loom.waitForExit() == 0)
        }
    }

    @Test func shutdownDeadlineClosesWhatIsLeftAndStillExitsZero() async throws {
        try await withBackend { backendPort in
            let (loom, port) = try startLoom(backendPort: backendPort, shutdownTimeout: "500ms")
            defer { loom.signal(SIGKILL) }
            let client = try RawClient(port: port, timeout: 10)
            try client.send("GET /delay?ms=8000 HTTP/1.1\r\nHost: a\r\n\r\n")
            usleep(200_000)
            let start = Date()
            loom.signal(SIGTERM)
            #expect(loom.waitForExit(timeout: 6) == 0)
            #expect(Date().timeIntervalSince(start) < 6)
            let (_, closed) = client.readUntilClose()
            #expect(closed)
        }
    }

    @Test func aPortInUseIsReportedByListenerAndAddressAndExitsNonZero() throws {
        let occupied = try HangingListener()
        defer { occupied.stop() }
        let path = try temporaryFile(named: "busy.yaml", """
            listeners:
              - name: web
                address: "127.0.0.1:\(occupied.port)"
            routes:
              - id: hi
                respond: {status: 200}
            """)
        let result = try LoomProcess.run(["run", "--config", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("listener \\\"web\\\" could not bind 127.0.0.1:\(occupied.port)"))
        #expect(result.stderr.contains("Address already in use"))
        #expect(!result.stderr.contains("shutdown deadline"))
    }

    @Test func secondSignalExitsAtOnce() async throws {
        try await withBackend { backendPort in
            let (loom, port) = try startLoom(backendPort: backendPort, shutdownTimeout: "30s")
            defer { loom.signal(SIGKILL) }
            let client = try RawClient(port: port, timeout: 10)
            try client.send("GET /delay?ms=8000 HTTP/1.1\r\nHost: a\r\n\r\n")
            usleep(200_000)
            loom.signal(SIGTERM)
            usleep(200_000)
            loom.signal(SIGINT)
            #expect(loom.waitForExit(timeout: 5) == 128 + SIGINT)
        }
    }

    /// 256 MiB up and 256 MiB down through a process whose peak RSS must stay under 96 MiB:
    /// only possible if bodies stream with backpressure instead of being buffered.
    @Test func largeBodiesStreamInBoundedMemory() async throws {
        try await withBackend { backendPort in
            let (loom, port) = try startLoom(backendPort: backendPort, shutdownTimeout: "1s")
            defer { loom.signal(SIGKILL) }
            let total = 256 * 1024 * 1024

            let upload = try RawClient(port: port, timeout: 60)
            try upload.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(total)\r\n\r\n")
            let chunk = [UInt8](repeating: 7, count: 1 << 20)
            for _ in 0..<(total >> 20) { try upload.send(chunk) }
            let echoed = try EchoedRequest(try upload.readResponse())
            #expect(echoed.bodyBytes == total)

            let download = try RawClient(port: port, timeout: 60)
            try download.send("GET /stream?bytes=\(total) HTTP/1.1\r\nHost: a\r\n\r\n")
            // Read the head byte by byte so the body count below is exact.
            var head = [UInt8]()
            while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
                let byte = download.read(count: 1)
                guard !byte.isEmpty else { break }
                head += byte
            }
            #expect(String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
            var received = 0
            while received < total {
                let bytes = download.read(count: min(1 << 20, total - received))
                if bytes.isEmpty { break }
                received += bytes.count
            }
            #expect(received == total)

            let peak = try #require(loom.peakResidentKiB)
            #expect(peak < 96 * 1024, "peak RSS \(peak) KiB")
        }
    }
}
