/// The attributes plugins read with `proxy_get_property`, by Envoy's paths (segments joined
/// with NUL on the wire, with "." here): strings as raw bytes, integers as 8-byte
/// little-endian, header maps in the ABI's map serialization, as Envoy encodes them.
///
/// | path | value |
/// |---|---|
/// | `request.path` | `:path` (target with query) |
/// | `request.url_path` | path without the query |
/// | `request.query` | query without `?` |
/// | `request.host` | `:authority` |
/// | `request.method`, `request.scheme`, `request.protocol` | as named |
/// | `request.id` | loom's request id |
/// | `request.headers` | every request field (a map) |
/// | `request.useragent`, `request.referer` | those fields |
/// | `source.address`, `source.port` | the client connection's peer |
/// | `destination.address`, `destination.port` | the listener's local address |
/// | `plugin_name`, `plugin_root_id`, `plugin_vm_id` | the plugin's configuration |
/// | `route_name` | the matched route |
/// | `route.parameters` | the route's path parameters (a map, by name) |
/// | `route.parameters.NAME` | the value of parameter `{NAME}` |
/// | `route.remainder` | what the route's trailing wildcard matched (`/x/y` for `/api/*` on `/api/x/y`) |
/// | `upstream.address`, `upstream.port` | the upstream endpoint the request went to (`ip:port`, `unix:/path`; response phases on) |
/// | `response.code` | the response status (response phases on) |
/// | `response.headers` | the response fields (response phases on) |
/// | `connection.mtls` | whether the client sent a verified certificate (a bool, one byte) |
/// | `connection.tls_version` | `TLSv1.2` or `TLSv1.3` (TLS connections) |
/// | `connection.subject_peer_certificate` | the client certificate's subject, RFC 4514 |
/// | `connection.dns_san_peer_certificate`, `connection.uri_san_peer_certificate` | its first DNS / URI subjectAltName |
///
/// Any other path is one the plugin stored with `proxy_set_property`, or NOT_FOUND.
enum PluginProperties {
    /// NUL-separated segments as a dotted path (a trailing NUL, as some SDKs send, dropped).
    static func path(_ raw: [UInt8]) -> String {
        var segments = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        while segments.last == "" { segments.removeLast() }
        return segments.joined(separator: ".")
    }

    static let builtIn: Set<String> = [
        "request.path", "request.url_path", "request.query", "request.host", "request.method", "request.scheme", "request.protocol",
        "request.id", "request.headers", "request.useragent", "request.referer", "source.address", "source.port",
        "destination.address", "destination.port", "plugin_name", "plugin_root_id", "plugin_vm_id", "route_name",
        "route.parameters", "route.remainder", "upstream.address", "upstream.port", "response.code", "response.headers",
        "connection.mtls", "connection.tls_version", "connection.subject_peer_certificate", "connection.dns_san_peer_certificate",
        "connection.uri_san_peer_certificate",
    ]

    static let parameterPrefix = "route.parameters."

    static func isBuiltIn(_ path: String) -> Bool { builtIn.contains(path) || path.hasPrefix(parameterPrefix) }

    static func value(of path: String, vm: PluginVM) -> [UInt8]? {
        switch path {
        case "plugin_name": return bytes(vm.plugin.name)
        case "plugin_root_id": return bytes(vm.plugin.rootID)
        case "plugin_vm_id": return []
        default: break
        }
        guard let stream = vm.currentStream else { return nil }
        let request = stream.requestHeaders
        let attributes = stream.attributes
        switch path {
        case "request.path": return request.value(":path").map(bytes)
        case "request.url_path": return request.value(":path").map { bytes(String($0.prefix { $0 != "?" })) }
        case "request.query":
            guard let target = request.value(":path"), let mark = target.firstIndex(of: "?") else { return [] }
            return bytes(String(target[target.index(after: mark)...]))
        case "request.host": return request.value(":authority").map(bytes)
        case "request.method": return request.value(":method").map(bytes)
        case "request.scheme": return bytes(attributes.scheme)
        case "request.protocol": return bytes(attributes.protocolName)
        case "request.id": return bytes(attributes.requestID)
        case "request.headers": return HeaderMapCodec.encode(request.regular.map { ($0.name, $0.value) })
        case "request.useragent": return request.value("user-agent").map(bytes)
        case "request.referer": return request.value("referer").map(bytes)
        case "source.address": return attributes.sourceAddress.map(bytes)
        case "source.port": return attributes.sourceAddress.flatMap(port).map(integer)
        case "destination.address": return attributes.destinationAddress.map(bytes)
        case "destination.port": return attributes.destinationAddress.flatMap(port).map(integer)
        case "route_name": return bytes(attributes.routeName)
        case "route.parameters": return HeaderMapCodec.encode(attributes.routeParameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        case "route.remainder": return bytes(attributes.routeRemainder)
        case _ where path.hasPrefix(parameterPrefix): return attributes.routeParameters[String(path.dropFirst(parameterPrefix.count))].map(bytes)
        case "upstream.address": return attributes.upstreamAddress.map(bytes)
        case "upstream.port": return attributes.upstreamAddress.flatMap(port).map(integer)
        case "response.code": return attributes.responseCode.map(integer)
        case "response.headers": return stream.responseHeaders.map { HeaderMapCodec.encode($0.regular.map { ($0.name, $0.value) }) }
        case "connection.mtls": return [attributes.security?.clientCertificate == nil ? 0 : 1]
        case "connection.tls_version": return attributes.security.map { bytes($0.version) }
        case "connection.subject_peer_certificate": return attributes.security?.clientCertificate.map { bytes($0.subject) }
        case "connection.dns_san_peer_certificate": return attributes.security?.clientCertificate?.dnsNames.first.map(bytes)
        case "connection.uri_san_peer_certificate": return attributes.security?.clientCertificate?.uris.first.map(bytes)
        default: return stream.properties[path]
        }
    }

    private static func bytes(_ text: some StringProtocol) -> [UInt8] { Array(text.utf8) }

    private static func integer(_ value: Int) -> [UInt8] {
        withUnsafeBytes(of: Int64(value).littleEndian) { Array($0) }
    }

    /// The port of `host:port` or `[v6]:port`.
    private static func port(_ address: String) -> Int? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...])
    }
}
