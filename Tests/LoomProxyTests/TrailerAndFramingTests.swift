import Foundation
import LoomConfig
import NIOCore
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Trailers, interim and bodiless responses: what is relayed and what is not.
    @Suite(.serialized) struct TrailerAndFramingTests {
        @Test func requestTrailersAreNotForwarded() async throws {
            try await E2E.withRawBackend("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", closeAfter: false) { backend, proxy in
                let response = try proxy.request(
                    "POST /x HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "3\r\nabc\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-ID: spoof\r\n\r\n")
                #expect(response.status == 200)
                try await Task.sleep(for: .milliseconds(100))
                let seen = backend.received.withLockedValue { $0 }
                #expect(seen.contains("3\r\nabc\r\n0\r\n\r\n"))
                #expect(!seen.contains("6.6.6.6"))
                #expect(!seen.contains("spoof"))
            }
        }

        @Test func responseTrailersLoseHopByHopFields() async throws {
            let upstream = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nConnection: close\r\nX-Checksum: 42\r\n\r\n"
            try await E2E.withRawBackend(upstream, closeAfter: false) { _, proxy in
                let client = try RawClient(port: proxy.port, timeout: 1)
                try client.send("GET /x HTTP/1.1\r\nHost: test.local\r\n\r\n")
                let head = try client.readHead()
                #expect(head.status == 200)
                let (rest, _) = client.readToEnd()
                let text = String(decoding: rest, as: UTF8.self)
                #expect(text.hasSuffix("0\r\nX-Checksum: 42\r\n\r\n"))
                #expect(!text.contains("Connection: close"))
            }
        }

        @Test func noContentLengthOn204() async throws {
            try await E2E.withRawBackend("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", closeAfter: false) { _, proxy in
                let response = try proxy.get("/x")
                #expect(response.status == 204)
                #expect(response.header("content-length") == nil)
            }
        }
    }
}

@Suite struct ClientAddressTests {
    @Test func ipv4MappedClientsAreWrittenAsIPv4() throws {
        #expect(TrustedProxies.text(of: try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 1)) == "10.1.2.3")
        #expect(TrustedProxies.text(of: try SocketAddress(ipAddress: "::1", port: 1)) == "::1")
        #expect(TrustedProxies.text(of: try SocketAddress(ipAddress: "192.0.2.7", port: 1)) == "192.0.2.7")
    }
}
