import Foundation
import LoomConfig
import Testing

@testable import LoomProxy

/// TLS termination through a running proxy, with curl and openssl as the clients:
/// certificates chosen by SNI, the minimum version, client certificates required or
/// requested (and their identity forwarded), files served over TLS, certificates
/// reloaded, and bad files refused at load.
extension ProxyE2E {
    @Suite struct TLSE2ETests {
        typealias Files = TLSFixtures.Files

        /// An https listener with `a.test` as the default certificate and `*.wild.test`
        /// chosen by SNI; `tls` adds settings, `rest` more configuration.
        static func config(_ files: Files, tls: String = "", rest: String = "routes: [{id: all, upstream: app}]") -> String {
            """
            listeners:
              - name: secure
                address: "127.0.0.1:8443"
                protocol: https
                tls:
                  cert_file: \(files.path("a.pem"))
                  key_file: \(files.path("a-key.pem"))
                  certificates:
                    - {cert_file: \(files.path("wild.pem")), key_file: \(files.path("wild-key.pem"))}
            \(tls.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
            \(rest)
            """
        }

        @Test func servesHTTPSAndPicksTheCertificateBySNI() async throws {
            let files = try TLSFixtures.files.get()
            let config = Self.config(files, rest: "server: {forwarding: {forwarded: true}}\nroutes: [{id: all, upstream: app}]")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let plain = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, path: "/hello")
                #expect(plain.status == 0, "\(plain.stderr)")
                let echoed = try EchoedRequest(json: Data(plain.body.utf8))
                #expect(echoed.uri == "/hello" && echoed.values("x-forwarded-proto") == ["https"])
                #expect(echoed.values("forwarded").first?.hasSuffix(";proto=https") == true, "\(echoed.headers)")

                // curl checks the name: each succeeds only if loom sent the right certificate.
                #expect(try TLSFixtures.curl(files, host: "x.wild.test", port: proxy.port).status == 0, "the wildcard certificate by SNI")
                #expect(try TLSFixtures.curl(files, host: "b.test", port: proxy.port).status == 60, "an unknown name gets the default certificate")
                #expect(try TLSFixtures.curl(files, host: "deep.x.wild.test", port: proxy.port).status == 60, "a wildcard covers one label")

                // Without SNI (an IP address), the default certificate.
                let bare = try E2E.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(proxy.port)", "-noservername"])
                #expect(String(decoding: bare.stdout, as: UTF8.self).contains("subject=CN = a.test"))

                // Plain HTTP to a TLS port is not answered as HTTP.
                let client = try RawClient(port: proxy.port, timeout: 2)
                try client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(!String(decoding: client.readToEnd().0, as: UTF8.self).hasPrefix("HTTP/1.1"))
            }
        }

        @Test func aMinimumVersionRefusesOlderClients() async throws {
            let files = try TLSFixtures.files.get()
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(files, tls: "min_version: \"1.3\"")) { _, proxy in
                #expect(try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--tlsv1.3"]).status == 0)
                let old = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--tls-max", "1.2"])
                #expect(old.status == 35, "TLS 1.2 refused in the handshake: \(old.stderr)")
            }
        }

        @Test func cipherSuitesAreLimitedForTLS12() async throws {
            let files = try TLSFixtures.files.get()
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(files, tls: "ciphers: ECDHE-ECDSA-AES256-GCM-SHA384")) { _, proxy in
                let allowed = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"])
                #expect(allowed.status == 0, "\(allowed.stderr)")
                let other = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"])
                #expect(other.status == 35, "\(other.stderr)")
            }
        }

        @Test func requiredClientCertificatesAreVerifiedAndForwarded() async throws {
            let files = try TLSFixtures.files.get()
            let tls = "client_auth: require\nclient_ca_file: \(files.ca)\nclient_identity_header: X-Client-Subject"
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(files, tls: tls)) { backends, proxy in
                let alice = try TLSFixtures.curl(
                    files, host: "a.test", port: proxy.port,
                    ["--cert", files.path("alice.pem"), "--key", files.path("alice-key.pem"), "-H", "X-Client-Subject: CN=admin"])
                #expect(alice.status == 0, "\(alice.stderr)")
                #expect(try EchoedRequest(json: Data(alice.body.utf8)).values("x-client-subject") == ["CN=alice,O=Loom"], "only the verified subject")

                let before = backends[0].requestURIs.withLockedValue(\.count)
                #expect(try TLSFixtures.curl(files, host: "a.test", port: proxy.port).status != 0, "no certificate: no request")
                let mallory = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--cert", files.path("mallory.pem"), "--key", files.path("mallory-key.pem")])
                #expect(mallory.status != 0, "a certificate from another CA is refused")
                #expect(backends[0].requestURIs.withLockedValue(\.count) == before)
            }
        }

        /// The catch-all route through the `headers` test plugin, which copies what it sees
        /// of the connection into request fields.
        static let headersPlugin = """
            plugins: [{name: headers, path: "{plugin:headers}"}]
            routes: [{id: all, upstream: app, plugins: [headers]}]
            """

        /// Plugins see the scheme and the client certificate (Envoy's `connection.*`).
        @Test func pluginsSeeTheConnectionsTLS() async throws {
            let files = try TLSFixtures.files.get()
            let tls = "client_auth: require\nclient_ca_file: \(files.ca)"
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(files, tls: tls, rest: Self.headersPlugin)) { _, proxy in
                let alice = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--cert", files.path("alice.pem"), "--key", files.path("alice-key.pem")])
                let echoed = try EchoedRequest(json: Data(alice.body.utf8))
                #expect(echoed.values("x-plugin-scheme") == ["https"] && echoed.values("x-plugin-tls") == ["TLSv1.3"], "\(echoed.headers)")
                #expect(echoed.values("x-plugin-peer") == ["CN=alice,O=Loom"] && echoed.values("x-plugin-peer-uri") == ["spiffe://loom/alice"])
            }
        }

        /// ALPN picks HTTP/2 for clients that offer it; the connection's TLS (the client
        /// certificate) reaches every stream, and plugins see the protocol.
        @Test func alpnNegotiatesHTTP2OrHTTP11() async throws {
            let files = try TLSFixtures.files.get()
            let tls = "client_auth: require\nclient_ca_file: \(files.ca)\nclient_identity_header: X-Client-Subject"
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(files, tls: tls, rest: Self.headersPlugin)) { _, proxy in
                let alice = ["--cert", files.path("alice.pem"), "--key", files.path("alice-key.pem"), "--write-out", "\n%{http_version}"]
                for (option, version, name) in [("--http2", "2", "HTTP/2"), ("--http1.1", "1.1", "HTTP/1.1")] {
                    let result = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, alice + [option])
                    #expect(result.status == 0, "\(result.stderr)")
                    let lines = result.body.split(separator: "\n")
                    #expect(lines.last.map(String.init) == version)
                    let echoed = try EchoedRequest(json: Data(lines.dropLast().joined(separator: "\n").utf8))
                    #expect(echoed.values("x-plugin-protocol") == [name] && echoed.values("x-plugin-scheme") == ["https"], "\(echoed.headers)")
                    #expect(echoed.values("x-client-subject") == ["CN=alice,O=Loom"] && echoed.values("x-forwarded-proto") == ["https"])
                }
            }
        }

        @Test func requestedClientCertificatesAreOptional() async throws {
            let files = try TLSFixtures.files.get()
            let tls = "client_auth: request\nclient_ca_file: \(files.ca)\nclient_identity_header: X-Client-Subject"
            // A route matching on the field would be spoofable if routing saw the client's copy.
            let rest = """
                routes:
                  - {id: admin, headers: [{name: X-Client-Subject, value: "CN=admin"}], respond: {status: 418}}
                  - {id: all, upstream: app}
                """
            try await E2E.withBackends(1, dialect: .loomYAML, Self.config(files, tls: tls, rest: rest)) { _, proxy in
                let anonymous = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["-H", "X-Client-Subject: CN=admin"])
                #expect(anonymous.status == 0, "\(anonymous.stderr)")
                #expect(try EchoedRequest(json: Data(anonymous.body.utf8)).values("x-client-subject").isEmpty, "a client's own value never goes upstream")
                let alice = try TLSFixtures.curl(files, host: "a.test", port: proxy.port, ["--cert", files.path("alice.pem"), "--key", files.path("alice-key.pem")])
                #expect(try EchoedRequest(json: Data(alice.body.utf8)).values("x-client-subject") == ["CN=alice,O=Loom"])
            }
        }

        /// Files leave through TLS (no sendfile there): large ones intact, ranges too.
        @Test func staticFilesOverTLS() async throws {
            let files = try TLSFixtures.files.get()
            let root = NSTemporaryDirectory() + "loom-tls-static-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let content = Data(E2E.streamPattern(300_001))
            try content.write(to: URL(fileURLWithPath: root + "/big.bin"))
            let config = Self.config(files, rest: "routes: [{id: files, path: /*, static: {root: \(root)}}]")
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                let whole = try E2E.curl(["--cacert", files.ca, "--resolve", "a.test:\(proxy.port):127.0.0.1", "https://a.test:\(proxy.port)/big.bin"])
                #expect(whole.status == 0 && whole.stdout == content, "\(whole.stderr)")
                let range = try E2E.curl(["--cacert", files.ca, "--resolve", "a.test:\(proxy.port):127.0.0.1", "-r", "100000-200000", "https://a.test:\(proxy.port)/big.bin"])
                #expect(range.stdout == content[100_000...200_000])
            }
        }

        /// A reload loads the certificate files again: new connections get the new one,
        /// even when the configuration did not change.
        @Test func certificatesReloadWithTheConfiguration() async throws {
            let files = try TLSFixtures.files.get()
            let directory = NSTemporaryDirectory() + "loom-tls-reload-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            func install(_ name: String) throws {
                for suffix in [".pem", "-key.pem"] {
                    try? FileManager.default.removeItem(atPath: directory + "/current" + suffix)
                    try FileManager.default.copyItem(atPath: files.path(name + suffix), toPath: directory + "/current" + suffix)
                }
            }
            try install("a")
            let config = """
                listeners: [{name: secure, address: "127.0.0.1:8443", protocol: https, tls: {cert_file: \(directory)/current.pem, key_file: \(directory)/current-key.pem}}]
                upstreams: [{name: app, endpoints: ["127.0.0.1:{port0}"]}]
                routes: [{id: all, upstream: app}]
                """
            try await E2E.withBackends(1, dialect: .loomYAML, config) { _, proxy in
                #expect(try TLSFixtures.curl(files, host: "a.test", port: proxy.port).status == 0)
                try install("b")
                let changes = try await proxy.engine.reload(to: proxy.engine.store.current.configuration, plugins: [])
                #expect(changes.contains { if case .listener(.replace) = $0 { true } else { false } }, "\(changes)")
                #expect(try TLSFixtures.curl(files, host: "b.test", port: proxy.port).status == 0, "the new certificate")
                #expect(try TLSFixtures.curl(files, host: "a.test", port: proxy.port).status == 60)
                #expect(try await proxy.engine.reload(to: proxy.engine.store.current.configuration, plugins: []).isEmpty, "no change, no reload")
            }
        }

        @Test func badFilesAreRefusedAtLoad() throws {
            let files = try TLSFixtures.files.get()
            func problems(_ tls: String) -> [String] {
                let text = """
                    listeners: [{name: secure, address: ":8443", protocol: https, tls: {\(tls)}}]
                    upstreams: [{name: app, endpoints: ["127.0.0.1:1"]}]
                    routes: [{id: all, upstream: app}]
                    """
                return ConfigLoader.load(text: text, fileName: "t.yaml", dialect: .loomYAML, environment: [:], checks: .full).diagnostics.map(\.message)
            }
            #expect(problems("cert_file: /nonexistent.pem, key_file: \(files.path("a-key.pem"))")
                == ["listener \"secure\": cert_file /nonexistent.pem: cannot be read"])
            #expect(problems("cert_file: \(files.path("a.pem")), key_file: \(files.path("b-key.pem"))").first?.contains("does not match") == true)
            #expect(problems("cert_file: \(files.path("a.ext")), key_file: \(files.path("a-key.pem"))").first?.contains("not a PEM certificate") == true)
            #expect(problems("cert_file: \(files.path("a.pem")), key_file: \(files.path("a-key.pem")), ciphers: \"AES128-SHA:NOT-A-CIPHER\"").first?
                .hasPrefix("unknown TLS 1.2 cipher suite \"NOT-A-CIPHER\"") == true)
            #expect(problems("cert_file: \(files.path("a.pem")), key_file: \(files.path("a-key.pem")), client_auth: require, client_ca_file: \(files.path("a.ext"))")
                .first?.contains("client_ca_file") == true)
        }
    }
}
