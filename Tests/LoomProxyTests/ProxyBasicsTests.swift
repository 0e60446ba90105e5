import LoomConfig
import NIOCore
import NIOPosix
import Testing

@testable import LoomProxy

/// End-to-end basics: a real proxy between a raw client and a real NIOHTTP1 backend.
@Suite(.serialized) struct ProxyBasicsTests {
    @Test func proxiesGetOverTCPAndReusesUpstreamConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = TestBackend(group: group)
        try await backend.start()
        let proxy = try await ProxyHarness.start(ProxyHarness.config(endpoints: [.tcp(host: "127.0.0.1", port: backend.port)]))

        let client = try RawClient(port: proxy.port)
        for index in 0..<20 {
            try client.send("GET /echo?i=\(index) HTTP/1.1\r\nHost: test.local\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 200)
            let echoed = try EchoedRequest(response)
            #expect(echoed.uri == "/echo?i=\(index)")
            #expect(echoed.values("host") == ["test.local"])
        }
        // One client connection on one loop: every request rode the same pooled connection.
        #expect(backend.connectionsAccepted == 1)

        await proxy.stop()
        await backend.stop()
        try await group.shutdownGracefully()
    }
}
