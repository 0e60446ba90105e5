import Foundation

/// Parsing of listen addresses and upstream endpoints.
///
/// Only the syntax is checked here; port ranges are the validator's job, so a port of 0 or
/// 70000 is reported once, in the same words for every dialect.
enum AddressParser {
    /// `":8080"` (all interfaces: host nil), `"host:8080"`, `"[::1]:8080"`.
    static func listenAddress(_ text: String) -> (host: String?, port: Int)? {
        guard let (host, port) = hostPort(text) else { return nil }
        return (host.isEmpty ? nil : host, port)
    }

    /// `"host:port"`, `"[::1]:port"` or `"unix:/path"`.
    static func endpoint(_ text: String) -> Endpoint? {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            return path.isEmpty ? nil : .unix(path: path)
        }
        guard let (host, port) = hostPort(text), !host.isEmpty else { return nil }
        return .tcp(host: host, port: port)
    }

    /// Splits at the last colon; brackets are required around IPv6 hosts so that the port
    /// is unambiguous. The port must be all digits (range checked later).
    private static func hostPort(_ text: String) -> (String, Int)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.lastIndex(of: ":") else { return nil }
        var host = String(trimmed[..<colon])
        let portText = trimmed[trimmed.index(after: colon)...]
        guard !portText.isEmpty, portText.allSatisfy({ ("0"..."9").contains($0) }), let port = Int(portText) else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") || host.contains("/") || host.contains(" ") {
            return nil
        }
        return (host, port)
    }
}
