import Foundation

/// The effective configuration as JSON (the admin API's `/config`, `loom ctl dump`): every
/// setting of the model, defaults filled in and `${VAR}`s expanded, with secrets replaced by
/// `"<redacted>"`.
///
/// Built by reflection over the model, so a new setting appears without touching this file;
/// field names are the model's, in snake_case (close to the YAML keys, not always equal).
/// Secrets are recognised by field name (tokens, keys, secrets, password hashes; plugins'
/// `config`, `vm_config` and environment, which loom cannot see into; database and cache
/// URLs) and, for anything with a `name` (header rules, header and query conditions), by that
/// name (`Authorization`, cookies, anything naming a token, key, secret, password, auth or
/// signature): its value is then hidden.
public enum ConfigDump {
    public static let redacted = "<redacted>"

    /// `value` as a JSON object tree (`JSONSerialization`-ready).
    public static func tree(_ value: Any) -> Any {
        dump(value, secret: false)
    }

    /// `value` as JSON text, keys sorted.
    public static func json(_ value: Any) -> String {
        let tree = tree(value)
        guard JSONSerialization.isValidJSONObject(tree),
            let data = try? JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Fields whose whole content is secret.
    static let secretFields: Set<String> = [
        "adminToken", "token", "keys", "secret", "hash", "environment", "password", "config", "vmConfig", "url", "redisURL",
    ]

    private static func dump(_ value: Any, secret: Bool) -> Any {
        if secret { return redacted }
        switch value {
        case let text as String: return text
        case let flag as Bool: return flag
        case let number as Int: return number
        case let number as Double: return number.isFinite ? number : String(describing: number)
        case let duration as Duration: return render(duration)
        case let endpoint as Endpoint: return endpoint.description
        default: break
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            return mirror.children.first.map { dump($0.value, secret: false) } ?? NSNull()
        case .collection, .set:
            return mirror.children.map { dump($0.value, secret: false) }
        case .dictionary:
            var object: [String: Any] = [:]
            for child in mirror.children {
                let pair = Mirror(reflecting: child.value).children.map(\.value)
                guard pair.count == 2 else { continue }
                object["\(pair[0])"] = dump(pair[1], secret: false)
            }
            return object
        case .enum:
            guard let child = mirror.children.first, let label = child.label else {
                if let raw = value as? any RawRepresentable { return "\(raw.rawValue)" }
                return "\(value)"
            }
            return [snakeCase(label): dump(child.value, secret: secretFields.contains(label))]
        case .tuple:
            let children = Array(mirror.children)
            if children.allSatisfy({ $0.label?.hasPrefix(".") ?? true }) { return children.map { dump($0.value, secret: false) } }
            var object: [String: Any] = [:]
            for (index, child) in children.enumerated() {
                let label = child.label.flatMap { $0.hasPrefix(".") ? nil : $0 } ?? "_\(index)"
                object[snakeCase(label)] = dump(child.value, secret: secretFields.contains(label))
            }
            return object
        default:
            var object: [String: Any] = [:]
            // A named field (a header rule, a header or query condition) whose name says it
            // carries a credential keeps its name and hides the rest.
            let secretName = mirror.children.contains { $0.label == "name" && ($0.value as? String).map(isSecretHeader) == true }
            for child in mirror.children {
                guard let label = child.label else { continue }
                let hidden = secretFields.contains(label) || (secretName && label != "name")
                let field = dump(child.value, secret: hidden && !isEmpty(child.value))
                if field is NSNull { continue }  // unset optionals are left out
                object[snakeCase(label)] = field
            }
            return object
        }
    }

    /// Nothing to hide: an unset optional or an empty list stays visible as such.
    private static func isEmpty(_ value: Any) -> Bool {
        let mirror = Mirror(reflecting: value)
        return (mirror.displayStyle == .optional || mirror.displayStyle == .collection) && mirror.children.isEmpty
    }

    static func isSecretHeader(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["authorization", "cookie", "token", "secret", "password", "key", "auth", "signature", "session"].contains { lower.contains($0) }
    }

    /// `1.5s`, `250ms`, `2m`: whole units where they fit.
    static func render(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        if seconds % 3600 == 0 && seconds != 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 && seconds != 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// `requestIDHeader` → `request_id_header`, `adminToken` → `admin_token`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        let characters = Array(name)
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0 {
                let previousLower = characters[index - 1].isLowercase || characters[index - 1].isNumber
                let nextLower = index + 1 < characters.count && characters[index + 1].isLowercase
                if previousLower || (nextLower && characters[index - 1].isUppercase) { out.append("_") }
            }
            out.append(contentsOf: character.lowercased())
        }
        return out
    }
}
