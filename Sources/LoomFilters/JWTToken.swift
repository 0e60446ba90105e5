import Foundation

/// A compact-serialized JSON Web Token (RFC 7519) split and decoded, not yet verified: the
/// header's `alg` and `kid`, the claims, the signature and the bytes it signs.
struct JWTToken: Sendable {
    let algorithm: String
    let keyID: String?
    let claims: [String: JSONValue]
    let signature: [UInt8]
    /// `header.payload` as sent: what the signature covers.
    let signingInput: [UInt8]

    enum Problem: Error, Equatable {
        case malformed(String)
    }

    init(_ token: Substring) throws(Problem) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("not a JWS compact serialization (three dot-separated parts)") }
        guard let header = Self.base64URL(parts[0]).flatMap(JSONValue.object) else { throw .malformed("header is not base64url JSON") }
        guard case .string(let algorithm)? = header["alg"] else { throw .malformed("header has no alg") }
        // RFC 7515 §4.1.11: extensions the recipient must understand; loom knows none.
        guard header["crit"] == nil else { throw .malformed("critical header extensions are not supported") }
        var keyID: String?
        switch header["kid"] {
        case .string(let value)?: keyID = value
        case nil: keyID = nil
        default: throw .malformed("kid is not a string")
        }
        guard let claims = Self.base64URL(parts[1]).flatMap(JSONValue.object) else { throw .malformed("payload is not base64url JSON") }
        guard !parts[2].isEmpty else { throw .malformed("signature missing") }
        guard let signature = Self.base64URL(parts[2]) else { throw .malformed("signature is not base64url") }
        self.algorithm = algorithm
        self.keyID = keyID
        self.claims = claims
        self.signature = signature
        self.signingInput = Array(token.utf8[..<parts[1].endIndex])
    }

    /// base64url without padding (RFC 7515 §2); nil for anything else.
    static func base64URL(_ text: Substring) -> [UInt8]? {
        guard text.utf8.allSatisfy({ byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }), text.utf8.count % 4 != 1 else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }

    /// Why the claims are not acceptable now (`now` in seconds since 1970), or nil: `exp` and
    /// `nbf` with `leeway`, `iss` among `issuers` and `aud` naming one of `audiences` (each
    /// unchecked when empty).
    static func claimsProblem(_ claims: [String: JSONValue], issuers: [String], audiences: [String], leeway: Double, now: Double) -> String? {
        switch claims["exp"] {
        case .number(let exp)?: if now > exp + leeway { return "token expired" }
        case nil: break
        default: return "exp is not a number"
        }
        switch claims["nbf"] {
        case .number(let nbf)?: if now < nbf - leeway { return "token not yet valid" }
        case nil: break
        default: return "nbf is not a number"
        }
        if !issuers.isEmpty {
            guard case .string(let issuer)? = claims["iss"], issuers.contains(issuer) else { return "issuer not accepted" }
        }
        if !audiences.isEmpty {
            let named: [String]
            switch claims["aud"] {
            case .string(let one)?: named = [one]
            case .array(let many)?: named = many.compactMap { if case .string(let name) = $0 { name } else { nil } }
            default: named = []
            }
            guard named.contains(where: audiences.contains) else { return "audience not accepted" }
        }
        return nil
    }

    /// A claim's value as a header field value, or nil when it could not be one (a control
    /// character would end the field).
    static func fieldValue(_ claim: JSONValue) -> String? {
        let text = claim.text
        let valid = text.unicodeScalars.allSatisfy { $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7F) }
        return valid ? text : nil
    }
}
