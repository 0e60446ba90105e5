/// `jwt`: requests must carry a JSON Web Token (`Authorization: Bearer …`) signed by one of
/// the configured keys, within its validity, from an accepted issuer, for an accepted
/// audience; else 401.
public struct JWTSettings: Sendable, Equatable {
    /// Where the verification keys come from.
    public enum Keys: Sendable, Equatable {
        /// `secret` with `algorithm` (HS256, HS384, HS512): a shared HMAC secret.
        case secret(String, algorithm: String)
        /// `jwks_file`: a JSON Web Key Set (RSA, EC and OKP public keys, each with a `kid`),
        /// read when the configuration is loaded; `json` is its content.
        case jwks(path: String, json: String)
    }

    public var keys: Keys
    /// Signature algorithms accepted (`alg` of the token): with a secret, its algorithm; with
    /// a key set, `algorithms` or every asymmetric one. `none` never is.
    public var algorithms: [String]
    /// Accepted `iss` values (empty: any).
    public var issuers: [String]
    /// Accepted `aud` values; a token must name one of them (empty: any).
    public var audiences: [String]
    /// Clock skew tolerated on `exp` and `nbf`.
    public var leeway: Duration
    /// Claims copied into request fields for the upstream (`sub` → `X-User-ID`); a client's
    /// own field of that name is always dropped.
    public var claimsToHeaders: [ClaimHeader]
    /// Send the token upstream too (default: removed, as Envoy's `forward: false`).
    public var forwardToken: Bool

    public struct ClaimHeader: Sendable, Equatable {
        public var claim: String
        public var header: String

        public init(claim: String, header: String) {
            self.claim = claim
            self.header = header
        }
    }

    public static let hmacAlgorithms = ["HS256", "HS384", "HS512"]
    public static let asymmetricAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

    public init(keys: Keys, algorithms: [String]? = nil, issuers: [String] = [], audiences: [String] = [], leeway: Duration = .zero,
                claimsToHeaders: [ClaimHeader] = [], forwardToken: Bool = false) {
        self.keys = keys
        if let algorithms {
            self.algorithms = algorithms
        } else if case .secret(_, let algorithm) = keys {
            self.algorithms = [algorithm]
        } else {
            self.algorithms = Self.asymmetricAlgorithms
        }
        self.issuers = issuers
        self.audiences = audiences
        self.leeway = leeway
        self.claimsToHeaders = claimsToHeaders
        self.forwardToken = forwardToken
    }
}

/// `basic_auth`: requests must carry a user and password (`Authorization: Basic …`) that an
/// htpasswd entry accepts; else 401 with `WWW-Authenticate: Basic realm=…`.
public struct BasicAuthSettings: Sendable, Equatable {
    /// `user:hash` entries, from `htpasswd_file` and `users`; hashes are bcrypt (`$2y$`,
    /// `$2a$`, `$2b$`) or `{SHA}` (base64 SHA-1).
    public var entries: [Entry]
    public var realm: String

    public struct Entry: Sendable, Equatable {
        public var user: String
        public var hash: String

        public init(user: String, hash: String) {
            self.user = user
            self.hash = hash
        }

        /// An htpasswd line `user:hash`, when the hash is of a supported kind.
        public init?(line: String) {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard !user.isEmpty, Self.isSupportedHash(hash) else { return nil }
            self.init(user: user, hash: hash)
        }

        public static func isSupportedHash(_ hash: String) -> Bool {
            if hash.hasPrefix("{SHA}") { return hash.count == 5 + 28 }
            // `$2y$10$` + 53 characters of salt and hash; a cost loom can check in reasonable
            // time (each step doubles it; htpasswd allows up to 17).
            guard ["$2y$", "$2a$", "$2b$"].contains(where: { hash.hasPrefix($0) }), hash.count == 60,
                Array(hash)[6] == "$", let cost = Int(hash.dropFirst(4).prefix(2))
            else { return false }
            return bcryptCosts.contains(cost)
        }

        public static let bcryptCosts = 4...17
    }

    public init(entries: [Entry], realm: String = "loom") {
        self.entries = entries
        self.realm = realm
    }
}
