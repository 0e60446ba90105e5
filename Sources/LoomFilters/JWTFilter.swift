import Foundation
import JWTKit
import LoomConfig
import LoomHTTP
import Synchronization

/// `jwt`: requests must carry a JSON Web Token (`Authorization: Bearer …`, RFC 6750) signed
/// with an accepted algorithm by a configured key (a shared HMAC secret, or a JWKS's RSA, EC
/// or OKP keys), not expired or early beyond the leeway, from an accepted issuer, for an
/// accepted audience. Else 401 with `WWW-Authenticate: Bearer …` (`error="invalid_token"`
/// and the reason when a token was sent). Accepted tokens' claims can be copied into request
/// fields; the token itself is not forwarded unless asked.
///
/// The cryptography is jwt-kit's. Its key collection is an actor, so the first request
/// for each key and algorithm pauses while the key's verifier is made by it; the verifier is
/// then kept (bounded: only keys the configuration names, times the accepted algorithms),
/// and every later request is checked on the event loop without a hop. Each verifier comes
/// from a collection of its own: jwt-kit keeps one verifier per key, so one RSA key could
/// otherwise serve RS256 or PS256 but not both.
final class JWTFilter: HTTPFilter {
    let name = "jwt"
    let settings: JWTSettings
    /// Seconds since 1970, injected for tests.
    let now: @Sendable () -> Double
    /// The key ids a token may name (a JWKS's); nil for a secret, which has none.
    private let keyIDs: Set<String>?
    /// The key set's keys, by id (empty for a secret).
    private let jwks: [String: JWK]
    /// The key a token without `kid` is checked with: the key set's first.
    private let defaultKeyID: String?
    /// Verifiers by key id and algorithm; nil for a pair jwt-kit cannot make one for.
    private let verifiers = Mutex<[String: (any JWTAlgorithm)?]>([:])
    let missing: FilterRejection

    static let factory: FilterRegistry.Factory = { settings in
        guard case .jwt(let settings) = settings else { return nil }
        return JWTFilter(settings)
    }

    init(_ settings: JWTSettings, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.settings = settings
        self.now = now
        missing = FilterRejection(
            status: 401, code: "unauthorized", message: "missing bearer token",
            headers: [HeaderPair(name: "WWW-Authenticate", value: #"Bearer realm="loom""#)])
        switch settings.keys {
        case .secret:
            keyIDs = nil
            jwks = [:]
            defaultKeyID = nil
        case .jwks(_, let json):
            // The configuration reader checked the set; a key jwt-kit cannot read is left out
            // here and refuses the tokens that name it.
            let keys = (try? JSONDecoder().decode(JWKS.self, from: Data(json.utf8)))?.keys ?? []
            var byID: [String: JWK] = [:]
            for key in keys { if let id = key.keyIdentifier?.string, byID[id] == nil { byID[id] = key } }
            jwks = byID
            keyIDs = Set(byID.keys)
            defaultKeyID = keys.first?.keyIdentifier?.string
        }
    }

    /// A verifier for `algorithm` with key `keyID` (or the default key), from a key
    /// collection holding only that key.
    private func makeVerifier(keyID: String?, algorithm: String) async throws -> any JWTAlgorithm {
        let collection = JWTKeyCollection()
        switch settings.keys {
        case .secret(let secret, let configured):
            let digest: DigestAlgorithm = configured == "HS512" ? .sha512 : configured == "HS384" ? .sha384 : .sha256
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
            return try await collection.getKey(alg: algorithm)
        case .jwks:
            guard let id = keyID ?? defaultKeyID, let key = jwks[id] else { throw JWTError.noKeyProvided }
            try await collection.add(jwk: key)
            return try await collection.getKey(for: JWKIdentifier(string: id), alg: algorithm)
        }
    }

    /// A refusal naming `reason`, which is loom's own text: nothing from the token is echoed
    /// into the response.
    func invalid(_ reason: String) -> FilterRejection {
        FilterRejection(
            status: 401, code: "unauthorized", message: "invalid bearer token: \(reason)",
            headers: [HeaderPair(name: "WWW-Authenticate", value: #"Bearer realm="loom", error="invalid_token", error_description="\#(reason)""#)])
    }

    func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        guard request.fieldCount("authorization") <= 1 else { return .reject(.repeatedCredentials("Authorization")) }
        guard let token = Self.bearerToken(request.header("authorization")) else { return .reject(missing) }
        let parsed: JWTToken
        do {
            parsed = try JWTToken(token)
        } catch .malformed(let reason) {
            return .reject(invalid(reason))
        }
        guard settings.algorithms.contains(parsed.algorithm) else { return .reject(invalid("algorithm not accepted")) }
        if let keyIDs, let keyID = parsed.keyID, !keyIDs.contains(keyID) { return .reject(invalid("unknown key id")) }
        // A secret's verifier does not depend on `kid`, so an attacker's ids cannot grow the
        // cache: its keys are the configured key ids times the accepted algorithms.
        let cacheKey = (keyIDs == nil ? "" : parsed.keyID ?? "") + "\u{0}" + parsed.algorithm
        if let known = verifiers.withLock({ $0[cacheKey] }) {
            guard let verifier = known else { return .reject(invalid("no key for this token")) }
            return check(parsed, with: verifier, &request)
        }
        // First use of this key with this algorithm: have jwt-kit's actor make its verifier
        // (or say it cannot: that is kept too, so it is asked once).
        return .pause(FilterPause { resumer in
            Self.run {
                let verifier = try? await self.makeVerifier(keyID: parsed.keyID, algorithm: parsed.algorithm)
                self.verifiers.withLock { $0[cacheKey] = .some(verifier) }
                resumer.resume { request in
                    guard let verifier else { return .reject(self.invalid("no key for this token")) }
                    return self.check(parsed, with: verifier, &request)
                }
            }
        })
    }

    /// Runs `work` on the filters' own executor, off the cooperative pool (see
    /// `DispatchTaskExecutor`).
    private static func run(_ work: @escaping @Sendable () async -> Void) {
        Task(executorPreference: executor) { await work() }
    }

    /// One queue for every jwt filter: making a verifier is rare (once per key).
    private static let executor = DispatchTaskExecutor(label: "loom.jwt")

    /// The signature, then the claims; on success the request gets the claim fields.
    func check(_ token: JWTToken, with verifier: any JWTAlgorithm, _ request: inout FilterRequest) -> FilterDecision {
        // The verifier must be for the algorithm the token names: a key set entry whose own
        // `alg` differs cannot be used under another name.
        guard verifier.name == token.algorithm, (try? verifier.verify(token.signature, signs: token.signingInput)) == true else {
            return .reject(invalid("signature does not verify"))
        }
        if let problem = JWTToken.claimsProblem(
            token.claims, issuers: settings.issuers, audiences: settings.audiences, leeway: settings.leeway.seconds, now: now())
        {
            return .reject(invalid(problem))
        }
        for mapping in settings.claimsToHeaders {
            // A client's own field of that name never passes, claim or not.
            request.upstreamChanges.remove(mapping.header)
            guard let claim = token.claims[mapping.claim] else { continue }
            guard let value = JWTToken.fieldValue(claim) else { return .reject(invalid("claim \(mapping.claim) cannot be a header value")) }
            request.upstreamChanges.set(mapping.header, value)
        }
        if !settings.forwardToken { request.upstreamChanges.remove("Authorization") }
        return .continue
    }

    /// The token of `Authorization: Bearer <token>` (the scheme case-insensitive, RFC 9110
    /// §11.1).
    static func bearerToken(_ authorization: String?) -> Substring? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingSpaces
        return token.isEmpty ? nil : token
    }
}

extension Duration {
    /// In seconds, fractions included.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
