import LoomConfig
import LoomFilters

/// One HTTP exchange as a plugin's stream context sees it: the header maps (with the
/// pseudo-headers Envoy presents), the body bytes of the running body callback, and what
/// the plugin decided through host calls (a local response, a closed stream).
///
/// Owned by its `PluginVM`, on its event loop (never touched elsewhere, hence unchecked
/// `Sendable`: the pause closures that capture it run on that loop).
final class PluginStream: @unchecked Sendable {
    let id: UInt32

    /// Where the exchange is: which maps and buffers host calls may touch.
    enum Phase {
        case requestHeaders, requestBody, requestTrailers, responseHeaders, responseBody, responseTrailers, log
    }

    var phase: Phase = .requestHeaders
    /// `:method`, `:scheme`, `:authority`, `:path`, then the fields as received.
    var requestHeaders = HeaderMap()
    /// `:status`, then the response's fields as received: built at first use from
    /// `receivedResponse` (most plugins never look at the response head).
    var responseHeaders: HeaderMap? {
        get {
            if let build = receivedResponse {
                builtResponseHeaders = build()
                receivedResponse = nil
            }
            return builtResponseHeaders
        }
        set {
            receivedResponse = nil
            builtResponseHeaders = newValue
        }
    }
    /// Builds `responseHeaders` once the response head arrived, until they are built.
    var receivedResponse: (() -> HeaderMap)?
    private var builtResponseHeaders: HeaderMap?
    /// The bytes of the body callback running (what `proxy_get_buffer_bytes` reads and
    /// `proxy_set_buffer_bytes` changes): a chunk, or everything held while the plugin
    /// pauses the body.
    var requestBody: [UInt8] = []
    var responseBody: [UInt8] = []
    /// The trailer sections, once they arrived. The plugin may change the response's;
    /// the request's are read-only (loom drops request trailers).
    var requestTrailers: HeaderMap?
    var responseTrailers: HeaderMap?
    /// Set by `proxy_send_local_response`.
    var localResponse: LocalResponse?
    /// Set by `proxy_close_stream`.
    var closed = false
    /// Set while `on_request_headers` paused the request: resumes it with the plugin's
    /// decision (`proxy_continue_stream`, a local response, or `proxy_close_stream`).
    var resumeRequest: (() -> Void)?
    /// Set while `on_response_headers` holds an upstream's response: resumes it likewise.
    var resumeResponse: (() -> Void)?
    /// Whether `proxy_send_local_response` may still replace the response: during
    /// `on_response_headers` of an upstream's response, and while it holds it.
    var canReplaceResponse = false
    /// Ends the exchange when the plugin closes or answers the stream while nothing of it
    /// waits for the plugin (from a timer or another context's callback).
    var interrupt: FilterInterrupt?
    /// Why the plugin failed while the request was paused (a trap in the HTTP call's
    /// callback, say): the resumed request fails with it.
    var failure: String?
    /// Values the plugin stored with `proxy_set_property`, by path.
    var properties: [String: [UInt8]] = [:]
    /// What `request.*`, `source.*` and the other attributes read.
    var attributes = StreamAttributes()

    init(id: UInt32) {
        self.id = id
    }

    /// Whether the request or the response waits for the plugin.
    var isPaused: Bool { resumeRequest != nil || resumeResponse != nil }

    /// The plugin closed the stream or answered it (`rejection`) outside the stream's own
    /// callbacks: what waits for the plugin resumes with that decision, or, when nothing
    /// waits, the exchange ends now rather than at its next callback (which may never come).
    /// Inside its own callback (`running`), the phase reads the decision when the call returns.
    func decided(_ rejection: @autoclosure () -> FilterRejection, running: Bool) {
        if isPaused {
            resumePaused()
        } else if !running {
            interrupt?(rejection())
        }
    }

    /// Resumes what waits for the plugin, once: the paused request (`type` `.httpRequest`),
    /// the held response (`.httpResponse`), or (nil) whichever does.
    func resumePaused(_ type: ProxyStreamType? = nil) {
        if type != .httpResponse, let resume = resumeRequest {
            resumeRequest = nil
            resume()
        } else if type != .httpRequest, let resume = resumeResponse {
            resumeResponse = nil
            resume()
        }
    }

    func map(_ type: ProxyMapType) -> HeaderMap? {
        switch type {
        case .httpRequestHeaders: requestHeaders
        case .httpRequestTrailers: requestTrailers
        case .httpResponseHeaders: responseHeaders
        case .httpResponseTrailers: responseTrailers
        default: nil
        }
    }

    /// Changes map `type` in place: NOT_FOUND when the stream has no such map, BAD_ARGUMENT
    /// when it has already gone out (request headers once the request left, response
    /// headers once sent) or is read-only (request trailers).
    func changeMap(_ type: ProxyMapType, _ change: (inout HeaderMap) -> Void) -> ProxyStatus {
        switch (type, phase) {
        case (.httpRequestHeaders, .requestHeaders):
            change(&requestHeaders)
        case (.httpResponseHeaders, .responseHeaders) where responseHeaders != nil:
            change(&responseHeaders!)
        case (.httpResponseTrailers, .responseTrailers) where responseTrailers != nil:
            change(&responseTrailers!)
        case (.httpRequestHeaders, _), (.httpResponseHeaders, _) where responseHeaders != nil,
             (.httpRequestTrailers, _) where requestTrailers != nil, (.httpResponseTrailers, _) where responseTrailers != nil:
            return .badArgument
        default:
            return .notFound
        }
        return .ok
    }
}

/// What the host knows of an exchange for `proxy_get_property`.
struct StreamAttributes {
    var routeName = ""
    var routeParameters: [String: String] = [:]
    var routeRemainder: Substring = ""
    var requestID = ""
    var sourceAddress: String?
    var destinationAddress: String?
    var responseCode: Int?
    /// The endpoint the request went to, once known (response phases on).
    var upstreamAddress: String?
    var scheme = "http"
    var protocolName = "HTTP/1.1"
    /// The TLS the request came over (nil: plain HTTP).
    var security: ConnectionSecurity?
}

/// An ordered header map as plugins see it: names lower-cased (as HTTP/2 has them, and
/// Envoy presents them), order kept, repeated names allowed.
struct HeaderMap: Equatable {
    var pairs: [Pair] = []

    struct Pair: Equatable {
        var name: String
        var value: String
    }

    init(_ pairs: [(String, String)] = []) {
        self.pairs = pairs.map { Pair(name: HeaderPair.lowered($0.0), value: $0.1) }
    }

    func value(_ name: String) -> String? {
        let lowered = name.lowercased()
        let values = pairs.filter { $0.name == lowered }.map(\.value)
        // Envoy joins repeated fields with a comma when one value is asked for; a
        // pseudo-header is one value (the first), never a list.
        if lowered.hasPrefix(":") { return values.first }
        return values.isEmpty ? nil : values.joined(separator: ",")
    }

    mutating func add(_ name: String, _ value: String) {
        pairs.append(Pair(name: name.lowercased(), value: value))
    }

    /// Replaces every field named `name` with one (added when there was none).
    mutating func replace(_ name: String, _ value: String) {
        let lowered = name.lowercased()
        guard let first = pairs.firstIndex(where: { $0.name == lowered }) else {
            pairs.append(Pair(name: lowered, value: value))
            return
        }
        pairs[first].value = value
        var seen = false
        pairs.removeAll { pair in
            guard pair.name == lowered else { return false }
            defer { seen = true }
            return seen
        }
    }

    mutating func remove(_ name: String) {
        let lowered = name.lowercased()
        pairs.removeAll { $0.name == lowered }
    }

    var encoded: [UInt8] { HeaderMapCodec.encode(pairs.map { ($0.name, $0.value) }) }

    /// `encoded.count`, without encoding.
    var encodedSize: Int { pairs.reduce(4) { $0 + 10 + $1.name.utf8.count + $1.value.utf8.count } }

    /// The pseudo-header fields (`:path`, …) and the others, apart.
    var regular: [Pair] { pairs.filter { !$0.name.hasPrefix(":") } }
}
