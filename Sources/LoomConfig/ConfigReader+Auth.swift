import Foundation

/// The authentication filters' settings: `jwt` and `basic_auth`. Key files (`jwks_file`,
/// `htpasswd_file`) are read when the configuration loads, so `loom validate` judges them and
/// a running loom never meets a missing one; a relative path is taken from the configuration
/// file's directory.
extension ConfigReader {
    static let jwtKeys = ["secret", "algorithm", "jwks_file", "algorithms", "issuer", "audience", "leeway", "claims_to_headers", "forward_token"]
    static let basicAuthKeys = ["htpasswd_file", "users", "realm"]

    mutating func jwt(_ table: ConfigTable) -> JWTSettings? {
        let keys: JWTSettings.Keys
        switch (table["secret"], table["jwks_file"]) {
        case (let node?, nil):
            guard let secret = string(node, table.path("secret")) else { return nil }
            var algorithm = "HS256"
            if let node = table["algorithm"], let name = string(node, table.path("algorithm")) {
                guard JWTSettings.hmacAlgorithms.contains(name) else {
                    report(table.path("algorithm"), at: node.location, "algorithm must be one of \(JWTSettings.hmacAlgorithms.joined(separator: ", ")) with a secret, got \"\(name)\"")
                    return nil
                }
                algorithm = name
            }
            // RFC 7518 §3.2: a key at least as long as the hash output (32, 48, 64 bytes).
            let minimum = Int(algorithm.dropFirst(2))! / 8
            guard secret.utf8.count >= minimum else {
                report(table.path("secret"), at: node.location, "secret must be at least \(minimum) bytes for \(algorithm) (RFC 7518 §3.2); use a long random value, e.g. \"${JWT_SECRET}\"")
                return nil
            }
            keys = .secret(secret, algorithm: algorithm)
        case (nil, let node?):
            guard let path = string(node, table.path("jwks_file")), let json = jwks(at: path, table.path("jwks_file"), node.location) else { return nil }
            if table.has("algorithm") { report(table.path("algorithm"), at: table["algorithm"]?.location, "algorithm goes with secret; a key set uses algorithms") }
            keys = .jwks(path: path, json: json)
        case (_?, _?):
            report(table.path, at: table.location, "use secret or jwks_file, not both")
            return nil
        case (nil, nil):
            report(table.path, at: table.location, "missing required key \"jwks_file\" (or \"secret\")")
            return nil
        }
        var settings = JWTSettings(keys: keys)
        if let node = table["algorithms"], let names = stringList(node, table.path("algorithms")) {
            let allowed: [String]
            if case .secret = keys { allowed = JWTSettings.hmacAlgorithms } else { allowed = JWTSettings.asymmetricAlgorithms }
            let unknown = names.filter { !allowed.contains($0) }
            if names.isEmpty || !unknown.isEmpty {
                report(table.path("algorithms"), at: node.location, "algorithms must list some of \(allowed.joined(separator: ", "))" + (unknown.isEmpty ? "" : ", got \(unknown.joined(separator: ", "))"))
            } else {
                settings.algorithms = names
            }
        }
        if let v = stringOrList(table, "issuer") { settings.issuers = v }
        if let v = stringOrList(table, "audience") { settings.audiences = v }
        if let v = duration(table, "leeway") { settings.leeway = v }
        if let v = bool(table, "forward_token") { settings.forwardToken = v }
        if let node = table["claims_to_headers"] {
            guard case .map(let entries) = node.value else {
                report(table.path("claims_to_headers"), at: node.location, "expected a mapping of claim names to header names ({sub: X-User-ID})")
                return nil
            }
            for entry in entries {
                let path = ConfigReader.join(table.path("claims_to_headers"), entry.key)
                if let name = headerName(entry.value, path, settable: true) {
                    settings.claimsToHeaders.append(.init(claim: entry.key, header: name))
                }
            }
        }
        return settings
    }

    mutating func basicAuth(_ table: ConfigTable) -> BasicAuthSettings? {
        var entries: [BasicAuthSettings.Entry] = []
        if let node = table["htpasswd_file"], let path = string(node, table.path("htpasswd_file")) {
            guard let text = readFile(path, table.path("htpasswd_file"), node.location) else { return nil }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let entry = BasicAuthSettings.Entry(line: line) else {
                    report(table.path("htpasswd_file"), at: node.location, "\(path):\(number + 1): " + Self.htpasswdProblem)
                    return nil
                }
                entries.append(entry)
            }
        }
        if let node = table["users"], let lines = stringList(node, table.path("users")) {
            for (index, line) in lines.enumerated() {
                guard let entry = BasicAuthSettings.Entry(line: line) else {
                    report("\(table.path("users"))[\(index)]", at: node.location, Self.htpasswdProblem)
                    return nil
                }
                entries.append(entry)
            }
        }
        guard table.has("htpasswd_file") || table.has("users") else {
            report(table.path, at: table.location, "missing required key \"htpasswd_file\" (or \"users\")")
            return nil
        }
        guard !entries.isEmpty else {
            report(table.path, at: table.location, "basic_auth has no users: every request would be refused")
            return nil
        }
        var settings = BasicAuthSettings(entries: entries)
        if let node = table["realm"], let realm = string(node, table.path("realm")) {
            if realm.isEmpty || realm.contains(where: { $0 == "\"" || $0 == "\\" || $0.isNewline }) {
                report(table.path("realm"), at: node.location, "realm must be non-empty text without quotes, backslashes or line breaks")
            } else {
                settings.realm = realm
            }
        }
        return settings
    }

    static let htpasswdProblem = "expected user:hash with a bcrypt ($2y$, $2a$, $2b$; cost 4 to 17) or {SHA} hash (create one with `htpasswd -B`)"

    /// A JWKS file's text, when it is JSON with a non-empty `keys` list whose every key has a
    /// `kid` and a public key type loom can use.
    private mutating func jwks(at path: String, _ keyPath: String, _ location: SourceLocation?) -> String? {
        guard let text = readFile(path, keyPath, location) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let keys = object["keys"] as? [[String: Any]], !keys.isEmpty else {
            report(keyPath, at: location, "\(path) is not a JSON Web Key Set ({\"keys\": [...]} with at least one key)")
            return nil
        }
        for (index, key) in keys.enumerated() {
            guard key["kid"] is String else {
                report(keyPath, at: location, "\(path): keys[\(index)] has no \"kid\" (every key needs one)")
                return nil
            }
            guard let type = key["kty"] as? String, ["RSA", "EC", "OKP"].contains(type) else {
                report(keyPath, at: location, "\(path): keys[\(index)] has kty \(key["kty"].map { "\"\($0)\"" } ?? "missing"); use RSA, EC or OKP public keys (a shared secret goes in \"secret\")")
                return nil
            }
        }
        return text
    }

    /// A file's text; `path` relative to the configuration file's directory.
    private mutating func readFile(_ path: String, _ keyPath: String, _ location: SourceLocation?) -> String? {
        let resolved = resolvedPath(path)
        guard let data = FileManager.default.contents(atPath: resolved), let text = String(data: data, encoding: .utf8) else {
            report(keyPath, at: location, "cannot read \(resolved)")
            return nil
        }
        return text
    }

    /// A string, or a list of strings.
    private mutating func stringOrList(_ table: ConfigTable, _ key: String) -> [String]? {
        guard let node = table[key] else { return nil }
        if case .scalar = node.value { return string(node, table.path(key)).map { [$0] } }
        return stringList(node, table.path(key))
    }
}
