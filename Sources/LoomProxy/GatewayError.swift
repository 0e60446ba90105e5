import LoomHTTP
import LoomFilters
import LoomUpstream

/// Everything that can go wrong with one request, as data.
///
/// Handlers never pick status codes themselves: they describe what happened (`kind`) and
/// `status` below is the one place that turns it into an HTTP status. `blame` says whose fault
/// it was (for logs and, later, passive health); `retryable` says whether trying another
/// connection could help without the client noticing.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The downstream request broke HTTP/1.1 rules (status from the parse error).
        case invalidRequest(HTTPParseError)
        /// The path has `.`/`..` segments, which the backend could resolve to a path no route
        /// matched (see `RequestPath`).
        case dotSegmentInPath
        /// The route's rewrite turned this request's path into one that is not in normalized
        /// form (a `..` or `//` made of captured text): forwarding it would let the backend
        /// resolve a path no route matched.
        case rewrittenPathInvalid
        /// CONNECT asks for a tunnel, which Loom does not provide.
        case tunnelNotSupported
        /// The client did not finish sending a request head in time.
        case requestHeaderTimeout
        case routeNotFound
        case methodNotAllowed(allowed: [String])
        /// None of the route's upstream's endpoints can take a request now (failing health
        /// checks, ejected, breakers open). `retryAfter`: seconds until one may, for the
        /// `Retry-After` field.
        case noEndpointAvailable(retryAfter: Int?)
        /// Connecting to the endpoint failed (refused, unreachable, reset during connect).
        case connectFailed(String)
        case connectTimeout
        /// The upstream closed or reset the connection before the response was complete.
        case upstreamClosed
        /// An HTTP/2 upstream refused the stream without processing it (REFUSED_STREAM, or
        /// above the last stream id of its GOAWAY): it is sent again once, whatever its method.
        case streamRefused
        /// The upstream answered with bytes that are not valid HTTP/1.1.
        case invalidUpstreamResponse(HTTPParseError)
        case responseHeaderTimeout
        /// One attempt got no response head within the upstream's `retry.per_try_timeout`.
        case perTryTimeout
        /// The upstream answered with a status its retry rules retry (seen only when the
        /// retry happened: otherwise that response goes to the client as it is).
        case retriedStatus(Int)
        /// The upstream sent nothing for the idle timeout while a body was streaming.
        case idleTimeout
        /// The client stopped sending its body, or stopped reading the response, for the
        /// idle timeout (nginx `client_body_timeout` / `send_timeout`).
        case clientTimeout
        /// The whole request took longer than the configured request timeout.
        case requestTimeout
        /// A gRPC call outlived the deadline its client sent (`grpc-timeout`): the client's
        /// choice, which says nothing against the endpoint.
        case deadlineExceeded
        /// A WebSocket carried no byte either way for `timeouts.tunnel` (its response started
        /// long ago: this only ends it, and names why in the log).
        case tunnelIdle
        /// A filter refused the request (403, 429, …), with its own code, message and fields.
        case filterRejected(FilterRejection)
        /// A filter threw: loom answers 500 rather than dropping the connection.
        case filterFailed(FilterFailure)
        /// A file loom serves (`static`, X-Sendfile) does not exist.
        case fileNotFound
        /// A file loom was asked to serve lies outside the directories it may serve from (an
        /// X-Sendfile path elsewhere, a symbolic link out of the root, a directory without
        /// an index file).
        case fileForbidden
    }

    public enum Blame: String, Sendable {
        case downstream, upstream, `internal`
    }

    public var kind: Kind

    public init(_ kind: Kind) {
        self.kind = kind
    }

    /// A filter asked that the client get no answer (`FilterRejection.reset`).
    public var resetsStream: Bool {
        if case .filterRejected(let rejection) = kind { return rejection.resetsStream }
        return false
    }

    /// The HTTP status a client sees. The only mapping from errors to statuses.
    public var status: Int {
        switch kind {
        case .invalidRequest(let error): error.status
        case .dotSegmentInPath, .rewrittenPathInvalid: 400
        case .tunnelNotSupported: 501
        case .requestHeaderTimeout, .clientTimeout: 408
        case .routeNotFound, .fileNotFound: 404
        case .fileForbidden: 403
        case .methodNotAllowed: 405
        case .noEndpointAvailable: 503
        case .connectFailed, .upstreamClosed, .streamRefused, .invalidUpstreamResponse: 502
        case .connectTimeout, .responseHeaderTimeout, .perTryTimeout, .idleTimeout, .requestTimeout, .deadlineExceeded, .tunnelIdle: 504
        case .retriedStatus(let status): status
        case .filterRejected(let rejection): rejection.status
        case .filterFailed: 500
        }
    }

    public var blame: Blame {
        switch kind {
        case .invalidRequest, .dotSegmentInPath, .rewrittenPathInvalid, .tunnelNotSupported, .requestHeaderTimeout, .clientTimeout,
            .routeNotFound, .methodNotAllowed, .tunnelIdle, .deadlineExceeded:
            .downstream
        case .connectFailed, .connectTimeout, .upstreamClosed, .streamRefused, .invalidUpstreamResponse,
            .responseHeaderTimeout, .perTryTimeout, .retriedStatus, .idleTimeout, .requestTimeout:
            .upstream
        case .noEndpointAvailable, .filterFailed: .internal
        case .fileNotFound, .fileForbidden: .downstream
        case .filterRejected: .downstream
        }
    }

    /// Whether a fresh upstream connection could succeed where this one failed, assuming the
    /// request can be replayed. Timeouts are not: the upstream may still be working on it.
    public var retryable: Bool {
        switch kind {
        case .connectFailed, .upstreamClosed, .streamRefused: true
        default: false
        }
    }

    /// What the upstream's retry rules make of this failure (`RetryPolicy`); nil: never
    /// retried (the client's fault, an invalid response, or a timeout the upstream may still
    /// be working through).
    var retryFailure: RetryPolicy.Failure? {
        switch kind {
        case .connectFailed, .connectTimeout: .connectFailure
        case .upstreamClosed, .streamRefused: .reset
        case .perTryTimeout: .perTryTimeout
        case .retriedStatus(let status): .status(status)
        default: nil
        }
    }

    /// Stable machine-readable code for the JSON body.
    public var code: String {
        switch kind {
        case .invalidRequest(let error):
            switch error.status {
            case 413: "payload_too_large"
            case 414: "uri_too_long"
            case 417: "expectation_failed"
            case 431: "request_header_fields_too_large"
            case 505: "http_version_not_supported"
            default: "bad_request"
            }
        case .dotSegmentInPath, .rewrittenPathInvalid: "bad_request"
        case .tunnelNotSupported: "not_implemented"
        case .requestHeaderTimeout, .clientTimeout: "request_timeout"
        case .routeNotFound, .fileNotFound: "not_found"
        case .fileForbidden: "forbidden"
        case .methodNotAllowed: "method_not_allowed"
        case .noEndpointAvailable: "service_unavailable"
        case .connectFailed, .upstreamClosed, .streamRefused, .invalidUpstreamResponse: "bad_gateway"
        case .connectTimeout, .responseHeaderTimeout, .perTryTimeout, .idleTimeout, .requestTimeout, .tunnelIdle: "gateway_timeout"
        case .deadlineExceeded: "deadline_exceeded"
        case .retriedStatus: "upstream_status"
        case .filterRejected(let rejection): rejection.code
        case .filterFailed: "internal_error"
        }
    }

    /// A short human explanation, safe to show to clients (no addresses or internals).
    public var message: String {
        switch kind {
        case .invalidRequest(let error): "invalid request: \(error)"
        case .dotSegmentInPath: "request path contains dot segments"
        case .rewrittenPathInvalid: "the route's rewrite makes an invalid path of this request's path"
        case .tunnelNotSupported: "CONNECT tunnels are not supported"
        case .requestHeaderTimeout: "request header not received in time"
        case .clientTimeout: "client sent or read nothing for too long"
        case .routeNotFound: "no route matches this request"
        case .fileNotFound: "no such file"
        case .fileForbidden: "this file is not served"
        case .methodNotAllowed: "method not allowed on this route"
        case .noEndpointAvailable: "no upstream endpoint available"
        case .connectFailed: "could not connect to upstream"
        case .connectTimeout: "timed out connecting to upstream"
        case .upstreamClosed: "upstream closed the connection"
        case .streamRefused: "upstream refused the request unprocessed"
        case .invalidUpstreamResponse: "upstream sent an invalid response"
        case .responseHeaderTimeout: "upstream did not respond in time"
        case .perTryTimeout: "upstream did not respond within the per-try timeout"
        case .retriedStatus(let status): "upstream answered \(status)"
        case .filterRejected(let rejection): rejection.message
        case .filterFailed: "internal error while handling the request"
        case .idleTimeout: "upstream connection idle for too long"
        case .requestTimeout: "request took too long"
        case .deadlineExceeded: "the call outlived its grpc-timeout"
        case .tunnelIdle: "WebSocket idle for longer than timeouts.tunnel"
        }
    }

    /// For logs: the message plus internal detail.
    public var description: String {
        switch kind {
        case .connectFailed(let detail): "\(message): \(detail)"
        case .invalidUpstreamResponse(let error): "\(message): \(error)"
        case .filterFailed(let failure): "\(message): \(failure)"
        default: message
        }
    }
}
