import Crypto
import Foundation
import HummingbirdBcrypt
import LoomConfig
import LoomHTTP
import Synchronization

/// `basic_auth`: requests must carry `Authorization: Basic …` (RFC 7617) with a user and
/// password an htpasswd entry accepts; else 401 with `WWW-Authenticate: Basic realm=…,
/// charset="UTF-8"`. The credentials are forwarded upstream, as nginx does.
///
/// `{SHA}` hashes are checked on the event loop. bcrypt is slow on purpose (tens of
/// milliseconds), so the filter pauses and checks it on its own queue, one at a time: a flood
/// of wrong passwords costs one core at most, never the event loops. At most `waitingLimit`
/// checks wait; beyond, requests get 503 with `Retry-After` rather than a queue that grows
/// without bound. Passwords that
/// verified are remembered (by a SHA-256 of user, password and hash; bounded), so a client
/// sending the same credentials on every request pays the bcrypt cost once. An unknown user
/// is checked against a dummy hash, so timing does not tell which users exist.
final class BasicAuthFilter: HTTPFilter {
    let name = "basic_auth"
    let refusal: FilterRejection
    private let hashes: [String: String]
    private let verified = Mutex<Set<SHA256Digest>>([])
    private let queue = DispatchQueue(label: "loom.basic_auth.bcrypt")
    /// bcrypt checks queued or running.
    private let waiting = Atomic(0)
    static let waitingLimit = 32
    static let busy = FilterRejection(
        status: 503, code: "service_unavailable", message: "too many password checks in progress",
        headers: [HeaderPair(name: "Retry-After", value: "1")])

    static let factory: FilterRegistry.Factory = { settings in
        guard case .basicAuth(let settings) = settings else { return nil }
        return BasicAuthFilter(settings)
    }

    /// Remembered verified credentials at most (then forgotten all at once).
    static let rememberedLimit = 10_000
    /// A bcrypt hash of a random text, at the cost of the configured ones: what an unknown
    /// user's password is checked against, so it takes as long as a known user's.
    private let dummyHash: String

    init(_ settings: BasicAuthSettings) {
        var hashes: [String: String] = [:]
        // The first entry for a user wins, as in Apache's htpasswd lookup.
        for entry in settings.entries where hashes[entry.user] == nil { hashes[entry.user] = entry.hash }
        self.hashes = hashes
        let cost = hashes.values.lazy.compactMap(Self.bcryptCost).first ?? 10
        dummyHash = Bcrypt.hash(UUID().uuidString, cost: cost)
        refusal = FilterRejection(
            status: 401, code: "unauthorized", message: "missing or invalid credentials",
            headers: [HeaderPair(name: "WWW-Authenticate", value: #"Basic realm="\#(settings.realm)", charset="UTF-8""#)])
    }

    func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        guard request.fieldCount("authorization") <= 1 else { return .reject(.repeatedCredentials("Authorization")) }
        guard let (user, password) = Self.credentials(request.header("authorization")) else { return .reject(refusal) }
        let hash = hashes[user]
        if let hash, hash.hasPrefix("{SHA}") {
            let digest = Data(Insecure.SHA1.hash(data: Data(password.utf8))).base64EncodedString()
            return APIKeyFilter.constantTimeEquals(Array(("{SHA}" + digest).utf8), Array(hash.utf8)) ? .continue : .reject(refusal)
        }
        let remembered = SHA256.hash(data: Data((user + "\u{0}" + password + "\u{0}" + (hash ?? "")).utf8))
        if hash != nil, verified.withLock({ $0.contains(remembered) }) { return .continue }
        guard waiting.add(1, ordering: .relaxed).newValue <= Self.waitingLimit else {
            waiting.subtract(1, ordering: .relaxed)
            return .reject(Self.busy)
        }
        let refusal = self.refusal
        return .pause(FilterPause { resumer in
            self.queue.async {
                defer { self.waiting.subtract(1, ordering: .relaxed) }
                // bcrypt implementations take `$2b$`; `$2y$` (PHP's, htpasswd's) is the same.
                let bcrypt = hash.map { $0.hasPrefix("$2y$") ? "$2b$" + $0.dropFirst(4) : $0 } ?? self.dummyHash
                guard Bcrypt.verify(password, hash: bcrypt), hash != nil else {
                    resumer.resume(.reject(refusal))
                    return
                }
                self.verified.withLock { verified in
                    if verified.count >= Self.rememberedLimit { verified.removeAll() }
                    verified.insert(remembered)
                }
                resumer.resume(.continue)
            }
        })
    }

    /// The cost of a bcrypt hash (`$2y$10$…` → 10), nil for other hashes.
    static func bcryptCost(_ hash: String) -> UInt8? {
        guard hash.hasPrefix("$2"), hash.count == 60 else { return nil }
        return UInt8(hash.dropFirst(4).prefix(2))
    }

    /// The user and password of `Authorization: Basic <base64(user:password)>`; nil when
    /// absent or malformed (or holding a NUL, which bcrypt's C code would cut at).
    static func credentials(_ authorization: String?) -> (user: String, password: String)? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic", let data = Data(base64Encoded: String(parts[1].trimmingSpaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":"), !text.contains("\u{0}")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}
