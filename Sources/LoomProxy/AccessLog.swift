import LoomConfig
import Logging
import NIOCore

/// Writes one line per finished request through swift-log (logger label `loom.access`).
///
/// Fields: request id, client, method, path, status, bytes in/out, duration, route, upstream,
/// endpoint; `LoomLogHandler` renders them as JSON (default) or `key=value` text. Disabled
/// entirely by `logging.access_log: false`.
public struct AccessLog: Sendable {
    let logger: Logger
    let enabled: Bool

    public init(logger: Logger, enabled: Bool) {
        self.logger = logger
        self.enabled = enabled
    }

    /// `http2`: the request came on an HTTP/2 stream (its head was translated to HTTP/1.1).
    func record(_ exchange: Exchange, clientIP: String?, http2: Bool = false, now: @autoclosure () -> NIODeadline) {
        guard enabled && exchange.snapshot.accessLog else { return }
        let micros = (now() - exchange.started).nanoseconds / 1000
        var metadata: Logger.Metadata = [
            "request_id": .string(exchange.requestID.text),
            "client": .string(clientIP ?? "-"),
            "method": .string(exchange.head.method),
            "path": .string(exchange.loggedTarget),
            "protocol": .string(http2 ? "HTTP/2" : exchange.head.minorVersion == 0 ? "HTTP/1.0" : "HTTP/1.1"),
            "status": .stringConvertible(exchange.status),
            "bytes_in": .stringConvertible(exchange.bytesIn),
            "bytes_out": .stringConvertible(exchange.bytesOut),
            "duration_ms": .stringConvertible(Milliseconds(micros: micros)),
        ]
        if let route = exchange.route { metadata["route"] = .string(route.config.name) }
        if let upstream = exchange.upstreamName { metadata["upstream"] = .string(upstream) }
        if let endpoint = exchange.endpoint { metadata["endpoint"] = .string(endpoint.description) }
        if let error = exchange.error { metadata["error"] = .string(error.description) }
        logger.info("request", metadata: metadata)
    }

    /// A request rejected before it had a usable head (parse error, header timeout).
    func recordRejected(status: Int, requestID: String, clientIP: String?, reason: String) {
        guard enabled else { return }
        logger.info("request", metadata: [
            "request_id": .string(requestID),
            "client": .string(clientIP ?? "-"),
            "status": .stringConvertible(status),
            "error": .string(reason),
        ])
    }

}

/// A duration rendered as milliseconds with microsecond precision (`1234` µs → `1.234`);
/// the JSON log handler writes it as a number.
struct Milliseconds: CustomStringConvertible, Sendable {
    var micros: Int64

    var description: String {
        let fraction = String(micros % 1000)
        return "\(micros / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
