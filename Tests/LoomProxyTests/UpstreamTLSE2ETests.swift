import Foundation
import LoomConfig
import NIOSSL
import Testing

@testable import LoomProxy

/// TLS from loom to upstreams: the certificate verified against a CA file and a name,
/// verification refused or turned off, a client certificate for upstreams that ask, pooled
/// connections reused, and health checks through TLS.
extension ProxyE2E {
    @Suite struct UpstreamTLSE2ETests {
        typealias Files = TLSFixtures.Files

        /// The backends' TLS: `a.test`'s certificate, and (`requireClient`) client
        /// certificates from the test CA required.
        static func backendTLS(_ files: Files, requireClient: Bool = false) throws -> NIOSSLContext {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(files.path("a.pem")).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.path("a-key.pem"), format: .pem)))
            if requireClient {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .file(files.ca)
            }
            return try NIOSSLContext(configuration: configuration)
        }

        static func config(tls: String, extra: String = "") -> String {
            """
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"], tls: \(tls)\(extra)}]
            routes: [{id: all, upstream: app}]
            """
        }

        @Test func theUpstreamsCertificateIsVerified() async throws {
            let files = try TLSFixtures.files.get()
            // One event loop, so both requests share its pool.
            let verified = "server: {worker_threads: 1}\n" + Self.config(tls: "{server_name: a.test, ca_file: \(files.ca)}")
            try await E2E.withBackends(1, dialect: .loomYAML, verified, backendTLS: try Self.backendTLS(files)) { backends, proxy in
                let first = try proxy.get("/one")
                #expect(try first.status == 200 && EchoedRequest(first).uri == "/one", "\(first.bodyText)")
                #expect(try proxy.get("/two").status == 200)
                #expect(backends[0].connectionsAccepted == 1, "the TLS connection was pooled and reused")
            }
            for (tls, why) in [
                ("{server_name: b.test, ca_file: \(files.ca)}", "a certificate for another name"),
                ("true", "a CA the system does not trust (and an IP address the certificate does not name)"),
            ] {
                try await E2E.withBackends(1, dialect: .loomYAML, Self.config(tls: tls), backendTLS: try Self.backendTLS(files)) { _, proxy in
                    let status = try proxy.get("/").status
                    #expect(status == 502, "\(why)")
                }
            }
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(tls: "{verify: false}"), backendTLS: try Self.backendTLS(files)) { _, proxy in
                let status = try proxy.get("/").status
                #expect(status == 200, "verification turned off")
            }
        }

        @Test func anHTTP2UpstreamThatDoesNotAgreeByALPNIsABadGateway() async throws {
            let files = try TLSFixtures.files.get()
            // The backend speaks only HTTP/1.1 and selects no ALPN protocol: loom does not
            // send it an HTTP/2 preface it cannot read (RFC 9113 §3.2).
            let yaml = Self.config(tls: "{server_name: a.test, ca_file: \(files.ca)}", extra: ", protocol: h2")
            try await E2E.withBackends(1, dialect: .loomYAML, yaml, backendTLS: try Self.backendTLS(files)) { backends, proxy in
                let status = try proxy.get("/").status
                #expect(status == 502)
                #expect(await E2E.eventually { proxy.logs.all.contains { $0["error"]?.description.contains("did not agree to HTTP/2 by ALPN") == true } },
                        "\(proxy.logs.all)")
                #expect(backends[0].requestURIs.withLockedValue { $0 }.isEmpty)
            }
        }

        /// A peer that accepts the connection but never answers the TLS handshake: the
        /// connect timeout covers the handshake of an HTTP/2 connection too.
        @Test func anHTTP2HandshakeThatNeverEndsTimesOut() async throws {
            let files = try TLSFixtures.files.get()
            // RawBackend answers only a whole HTTP head: a ClientHello gets nothing.
            try await E2E.withRawBackend("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", closeAfter: false, configure: { configuration in
                configuration.upstreams[0].protocol = .h2
                configuration.upstreams[0].tls = UpstreamTLS(serverName: "a.test", caFile: files.ca)
                configuration.upstreams[0].timeouts.connect = .milliseconds(300)
            }) { _, proxy in
                let started = ContinuousClock.now
                let status = try proxy.get("/").status
                #expect(status == 504 && ContinuousClock.now - started < .seconds(3))
            }
        }

        @Test func aClientCertificateForUpstreamsThatAsk() async throws {
            let files = try TLSFixtures.files.get()
            let backendTLS = try Self.backendTLS(files, requireClient: true)
            let withCertificate = Self.config(
                tls: "{server_name: a.test, ca_file: \(files.ca), cert_file: \(files.path("alice.pem")), key_file: \(files.path("alice-key.pem"))}")
            try await E2E.withBackends(1, dialect: .loomYAML, withCertificate, backendTLS: backendTLS) { _, proxy in
                let status = try proxy.get("/").status
                #expect(status == 200)
            }
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(tls: "{server_name: a.test, ca_file: \(files.ca)}"), backendTLS: backendTLS) { _, proxy in
                let status = try proxy.get("/").status
                #expect(status == 502, "no client certificate, no request")
            }
        }

        /// An HTTP health check of a TLS upstream goes through TLS: a plain one would fail
        /// and take the only endpoint out (503).
        @Test func healthChecksGoThroughTLS() async throws {
            let files = try TLSFixtures.files.get()
            let config = Self.config(
                tls: "{server_name: a.test, ca_file: \(files.ca)}",
                extra: ", health_check: {path: /health, interval: 50ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1}")
            try await E2E.withBackends(1, dialect: .loomYAML, config, backendTLS: try Self.backendTLS(files)) { _, proxy in
                try await Task.sleep(for: .milliseconds(300))
                let status = try proxy.get("/").status
                #expect(status == 200)
            }
        }

        @Test func settingsAreChecked() throws {
            let files = try TLSFixtures.files.get()
            func problems(_ upstream: String) -> [String] {
                let text = """
                    upstreams: [{name: app, \(upstream)}]
                    routes: [{id: all, upstream: app}]
                    """
                return ConfigLoader.load(text: text, fileName: "t.yaml", dialect: .loomYAML, environment: [:], checks: .full).diagnostics.map(\.message)
            }
            #expect(problems("endpoints: [\"127.0.0.1:1\"], tls: true") == [])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], tls: {ca_file: /nonexistent.pem}") == ["upstream \"app\": ca_file /nonexistent.pem: cannot be read"])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], tls: {cert_file: \(files.path("alice.pem"))}")
                == ["tls.cert_file and tls.key_file go together (a client certificate and its key)"])
            #expect(problems("endpoints: [\"unix:/tmp/x.sock\"], tls: true")
                == ["TLS over a unix socket needs tls.server_name (the name to verify the certificate against) or verify: false"])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], protocol: h2")
                == ["upstream \"app\": protocol h2 is HTTP/2 over TLS and needs tls (use h2c for cleartext HTTP/2)"])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], protocol: h2c, tls: true")
                == ["upstream \"app\": protocol h2c is cleartext HTTP/2 but the upstream has tls (use h2)"])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], protocol: h2, tls: true") == [])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], protocol: grpc") == [])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], protocol: grpc, health_check: {path: /}")
                == ["upstream \"app\" speaks grpc but HTTP health checks speak HTTP/1.1 (use type: tcp)"])
            #expect(problems("endpoints: [\"127.0.0.1:1\"], tls: {server_name: 127.0.0.1}").first?.hasPrefix("tls.server_name \"127.0.0.1\" must be a DNS name") == true)
        }
    }
}
