import Testing

@testable import LoomConfig

/// Listener `tls` settings: how they decode, and which combinations are refused.
@Suite struct TLSConfigTests {
    static func listener(_ tls: String, protocol: String = "https") -> ConfigLoadResult {
        TestSupport.yaml("""
            listeners: [{name: s, address: ":8443", protocol: \(`protocol`), tls: {\(tls)}}]
            upstreams: [{name: app, endpoints: ["127.0.0.1:1"]}]
            routes: [{id: all, upstream: app}]
            """)
    }

    @Test func settingsDecode() throws {
        let result = Self.listener("""
            cert_file: /c/a.pem, key_file: /c/a.key, certificates: [{cert_file: b.pem, key_file: b.key}],
            min_version: "1.3", ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:AES256-SHA", client_auth: request, client_ca_file: /c/ca.pem,
            client_identity_header: X-Client-Subject
            """)
        #expect(result.problems == [])
        let tls = try #require(result.configuration?.listeners.first?.tls)
        // Relative to the configuration file's directory (the working directory for "t.yaml").
        #expect(tls.certificates.map(\.certFile) == ["/c/a.pem", TestSupport.resolved("b.pem")])
        #expect(tls.minVersion == "1.3" && tls.ciphers == ["ECDHE-ECDSA-AES128-GCM-SHA256", "AES256-SHA"])
        #expect(tls.clientAuth == .request && tls.clientCAFile == "/c/ca.pem" && tls.clientIdentityHeader == "X-Client-Subject")
    }

    @Test(arguments: [
        ("cert_file: /a.pem", "protocol: https", "listeners[0].tls: missing required key \"key_file\""),
        ("cert_file: /a.pem, key_file: /a.key", "protocol: http", "listeners[0].tls: listener \"s\" has tls settings but speaks cleartext http (use protocol: https)"),
        ("cert_file: /a.pem, key_file: /a.key", "protocol: h2c", "listeners[0].tls: listener \"s\" has tls settings but speaks cleartext h2c (use protocol: https)"),
        ("min_version: \"1.3\"", "protocol: https", "listeners[0].tls: https listener \"s\" needs a certificate (tls.cert_file and tls.key_file, or tls.certificates)"),
        ("cert_file: /a.pem, key_file: /a.key, client_auth: require", "protocol: https",
         "listeners[0].tls: client_auth: require needs client_ca_file, the CA that signs client certificates"),
        ("cert_file: /a.pem, key_file: /a.key, client_ca_file: /ca.pem", "protocol: https",
         "listeners[0].tls: client_ca_file is only used with client_auth: request or require"),
        ("cert_file: /a.pem, key_file: /a.key, client_identity_header: X-Who", "protocol: https",
         "listeners[0].tls: client_identity_header needs client_auth: request or require (there is no client identity otherwise)"),
        ("cert_file: /a.pem, key_file: /a.key, client_auth: require, client_ca_file: /ca.pem, client_identity_header: X-Request-ID", "protocol: https",
         "listeners[0].tls: client_identity_header \"X-Request-ID\" is the request id header, which loom sets itself"),
        ("cert_file: /a.pem, key_file: /a.key, client_auth: require, client_ca_file: /ca.pem, client_identity_header: Host", "protocol: https",
         "listeners[0].tls.client_identity_header: header \"Host\" is managed by loom and cannot be set here"),
        ("cert_file: /a.pem, key_file: /a.key, min_version: \"1.1\"", "protocol: https",
         "listeners[0].tls.min_version: unknown TLS version \"1.1\" (expected \"1.2\" or \"1.3\")"),
    ])
    func mistakesAreRefused(tls: String, protocol line: String, expected: String) {
        // Without the position: the message and the key it names.
        let problems = Self.listener(tls, protocol: String(line.dropFirst("protocol: ".count))).diagnostics.map { "\($0.path): \($0.message)" }
        #expect(problems.contains(expected), "\(problems)")
    }

    @Test func unknownCiphersAreRefused() {
        let problems = Self.listener("cert_file: /a.pem, key_file: /a.key, ciphers: \"HIGH:!aNULL\"").problems
        #expect(problems.count == 1 && problems[0].contains("unknown TLS 1.2 cipher suite \"HIGH\""), "\(problems)")
    }

    @Test func plannedProtocolsStayRefused() {
        for name in ["http2", "http3"] {
            #expect(Self.listener("cert_file: /a.pem, key_file: /a.key", protocol: name).problems.contains { $0.contains("not supported yet: \(name) listeners") })
        }
    }
}
