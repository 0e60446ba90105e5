import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parsing of listen addresses, upstream endpoints and upstream hosts.
///
/// Only the syntax is checked here; port ranges are the validator's job, so a port of 0 or
/// 70000 is reported once, in the same words for every dialect.
///
/// One set of host rules (`host(_:allowBareIPv6:)`) serves YAML endpoints, listen addresses,
/// WarpDrive TOML `host` keys and simple mode's `*_TARGET_HOST`: a host name or an IPv4
/// address, or an IPv6 address in brackets; never a port, a scheme, a path, spaces or
/// control characters. Where the port is a separate setting (TOML `host`, `*_TARGET_HOST`)
/// an IPv6 address may also be written without brackets (`::1`).
enum AddressParser {
    /// Why a host was refused; callers phrase the message for their setting.
    enum HostProblem: Error, Equatable {
        case empty
        /// `"127.0.0.1:3000"`, `"[::1]:80"`.
        case port
        /// `"http://app"`.
        case scheme
        /// Anything else: spaces, control characters, `/`, `?`, `#`, `@`, stray brackets,
        /// a bracketed text that is not an IPv6 address.
        case invalid

        /// The message for host `text`; `portSetting` names where the port goes instead.
        func message(_ text: String, portSetting: String) -> String {
            switch self {
            case .empty: "host must not be empty"
            case .port: "host \"\(text)\" must not include a port (set it with \(portSetting))"
            case .scheme: "host \"\(text)\" must not include a scheme (write only the host name or address)"
            case .invalid: "invalid host \"\(text)\" (use a host name, an IPv4 address or an IPv6 address such as \"::1\")"
            }
        }
    }

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

    /// A host on its own: a name, an IPv4 address, or an IPv6 address in brackets (or bare,
    /// with `allowBareIPv6`). Returns the host as endpoints store it: IPv6 without brackets.
    static func host(_ text: String, allowBareIPv6: Bool) -> Result<String, HostProblem> {
        if text.isEmpty { return .failure(.empty) }
        if let scheme = text.range(of: "://"), !text[..<scheme.lowerBound].isEmpty,
            text[..<scheme.lowerBound].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        {
            return .failure(.scheme)
        }
        if text.hasPrefix("[") {
            if text.hasSuffix("]") {
                let inner = String(text.dropFirst().dropLast())
                return isIPv6(inner) ? .success(inner) : .failure(.invalid)
            }
            if let close = text.lastIndex(of: "]"), isIPv6(String(text[text.index(after: text.startIndex)..<close])),
                isPortSuffix(text[text.index(after: close)...])
            {
                return .failure(.port)
            }
            return .failure(.invalid)
        }
        let forbidden: Set<Character> = ["/", "?", "#", "@", "[", "]", "\\"]
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || (0x7F...0x9F).contains($0.value) || $0.properties.isWhitespace })
            || text.contains(where: forbidden.contains)
        {
            return .failure(.invalid)
        }
        guard let colon = text.firstIndex(of: ":") else { return .success(text) }
        if allowBareIPv6 && isIPv6(text) { return .success(text) }
        // One colon followed by digits: a port.
        if colon != text.startIndex, !text[text.index(after: colon)...].contains(":"), isPortSuffix(text[colon...]) {
            return .failure(.port)
        }
        return .failure(.invalid)
    }

    /// `":"` followed by one or more digits.
    private static func isPortSuffix(_ text: Substring) -> Bool {
        text.first == ":" && text.count > 1 && text.dropFirst().allSatisfy { ("0"..."9").contains($0) }
    }

    /// Whether `text` is an IPv4 dotted quad or an IPv6 address (bracketed or not).
    static func isIPLiteral(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return true }
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        return bare.contains(":") && isIPv6(bare)
    }

    /// An IPv6 address, optionally with a `%zone` suffix (`fe80::1%eth0`).
    static func isIPv6(_ text: String) -> Bool {
        let address = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = address.first, !first.isEmpty, address.count == 1 || !address[1].isEmpty else { return false }
        var v6 = in6_addr()
        return inet_pton(AF_INET6, String(first), &v6) == 1
    }

    /// Splits at the last colon; brackets are required around IPv6 hosts so that the port
    /// is unambiguous. The port must be all digits (range checked later). A non-empty host
    /// must pass `host(_:allowBareIPv6: false)`; an empty one is left to the caller.
    private static func hostPort(_ text: String) -> (String, Int)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.lastIndex(of: ":") else { return nil }
        let hostText = String(trimmed[..<colon])
        let portText = trimmed[trimmed.index(after: colon)...]
        guard !portText.isEmpty, portText.allSatisfy({ ("0"..."9").contains($0) }), let port = Int(portText) else { return nil }
        if hostText.isEmpty { return ("", port) }
        guard case .success(let host) = host(hostText, allowBareIPv6: false) else { return nil }
        return (host, port)
    }
}
