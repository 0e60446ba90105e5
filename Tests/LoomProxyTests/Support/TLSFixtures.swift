import Foundation

/// Certificates for the TLS tests, made once per test process with the openssl CLI in a
/// temporary directory: a CA, server certificates it signs (`a.test`, `*.wild.test`,
/// `b.test`), a client certificate (`CN=alice,O=Loom`, URI `spiffe://loom/alice`), and a
/// client certificate from a CA loom does not trust.
enum TLSFixtures {
    struct Files: Sendable {
        let directory: String
        func path(_ name: String) -> String { directory + "/" + name }
        var ca: String { path("ca.pem") }
    }

    static let files: Result<Files, TLSFixtureError> = make()

    struct TLSFixtureError: Error, CustomStringConvertible {
        let description: String
    }

    static func make() -> Result<Files, TLSFixtureError> {
        let directory = NSTemporaryDirectory() + "loom-tls-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = Files(directory: directory)
        do {
            try authority("ca", subject: "/CN=Loom Test CA", in: files)
            try authority("rogue-ca", subject: "/CN=Rogue CA", in: files)
            try issue("a", subject: "/CN=a.test", extensions: "subjectAltName=DNS:a.test\nextendedKeyUsage=serverAuth", by: "ca", in: files)
            try issue("wild", subject: "/CN=wild", extensions: "subjectAltName=DNS:*.wild.test\nextendedKeyUsage=serverAuth", by: "ca", in: files)
            try issue("b", subject: "/CN=b.test", extensions: "subjectAltName=DNS:b.test\nextendedKeyUsage=serverAuth", by: "ca", in: files)
            try issue("alice", subject: "/O=Loom/CN=alice", extensions: "subjectAltName=URI:spiffe://loom/alice\nextendedKeyUsage=clientAuth", by: "ca", in: files)
            try issue("mallory", subject: "/CN=mallory", extensions: "extendedKeyUsage=clientAuth", by: "rogue-ca", in: files)
            return .success(files)
        } catch let error as TLSFixtureError {
            return .failure(error)
        } catch {
            return .failure(TLSFixtureError(description: "\(error)"))
        }
    }

    private static func openssl(_ arguments: [String]) throws {
        let result = try E2E.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw TLSFixtureError(description: "openssl \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    private static func authority(_ name: String, subject: String, in files: Files) throws {
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", files.path("\(name)-key.pem"), "-out", files.path("\(name).pem"),
        ])
    }

    /// `name.pem` and `name-key.pem`, signed by `issuer`.
    private static func issue(_ name: String, subject: String, extensions: String, by issuer: String, in files: Files) throws {
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
            "-keyout", files.path("\(name)-key.pem"), "-out", files.path("\(name).csr"),
        ])
        try extensions.write(toFile: files.path("\(name).ext"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", files.path("\(name).csr"), "-CA", files.path("\(issuer).pem"), "-CAkey", files.path("\(issuer)-key.pem"),
            "-CAcreateserial", "-days", "30", "-extfile", files.path("\(name).ext"), "-out", files.path("\(name).pem"),
        ])
    }

    /// Runs curl over TLS to `host` (resolved to 127.0.0.1 at `port`) trusting the test CA;
    /// returns curl's exit status, the body, and stderr.
    static func curl(_ files: Files, host: String, port: Int, path: String = "/", _ extra: [String] = []) throws -> (status: Int32, body: String, stderr: String) {
        let result = try E2E.curl(["--cacert", files.ca, "--resolve", "\(host):\(port):127.0.0.1", "https://\(host):\(port)\(path)"] + extra)
        return (result.status, String(decoding: result.stdout, as: UTF8.self), result.stderr)
    }
}
