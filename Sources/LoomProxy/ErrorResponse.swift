import LoomConfig
import LoomFilters
import NIOCore

/// Serialises the small JSON error responses Loom sends itself.
///
/// Body: `{"error":"bad_gateway","message":"could not connect to upstream","status":502,"request_id":"…"}`.
/// Every local response carries the request id header so clients can quote it.
enum ErrorResponse {
    /// Writes a complete HTTP/1.1 response for `error` into `out`; `added` fields (the route
    /// filters' response fields: CORS, security headers) go after loom's own. `grpc`: the
    /// request is a gRPC call, which gets the failure as a gRPC status (`GRPC.status`) in a
    /// trailers-only response (200, no body), as Envoy answers gRPC calls, rather than a
    /// JSON body no gRPC client reads.
    static func write(
        _ error: GatewayError, requestID: String, requestIDHeader: String, date: String, close: Bool,
        headRequest: Bool, grpc: Bool = false, added: [HeaderPair] = [], into out: inout ByteBuffer
    ) {
        var extra: [(String, String)] = [(requestIDHeader, requestID)]
        if case .methodNotAllowed(let allowed) = error.kind {
            extra.append(("Allow", allowed.joined(separator: ", ")))
        }
        if case .noEndpointAvailable(let retryAfter?) = error.kind {
            extra.append(("Retry-After", String(retryAfter)))
        }
        if case .filterRejected(let rejection) = error.kind {
            extra += rejection.headers.map { ($0.name, $0.value) }
        }
        extra += added.map { ($0.name, $0.value) }
        if grpc {
            let status = [
                ("Content-Type", "application/grpc"), ("grpc-status", String(GRPC.status(for: error).rawValue)),
                ("grpc-message", GRPC.percentEncoded(error.message)),
            ]
            writeHead(status: 200, headers: status + extra, contentLength: 0, date: date, close: close, into: &out)
            return
        }
        var body = "{\"error\":\"\(error.code)\",\"message\":"
        JSONText.appendQuoted(error.message, to: &body)
        body += ",\"status\":\(error.status),\"request_id\":"
        JSONText.appendQuoted(requestID, to: &body)
        body += "}\n"
        writeSimple(
            status: error.status, headers: [("Content-Type", "application/json")] + extra, body: body, date: date, close: close,
            headRequest: headRequest, into: &out)
    }

    /// Writes a complete response with a fixed body (used by `respond` routes too).
    static func writeSimple(
        status: Int, headers: [(String, String)], body: String, date: String, close: Bool, headRequest: Bool,
        into out: inout ByteBuffer
    ) {
        // 1xx, 204 and 304 never carry a body or a length (RFC 9110 §8.6).
        let bodyless = status < 200 || status == 204 || status == 304
        writeHead(status: status, headers: headers, contentLength: bodyless ? nil : body.utf8.count, date: date, close: close, into: &out)
        if !bodyless && !headRequest { out.writeString(body) }
    }

    /// A response head loom writes itself, with `Content-Length` when given.
    static func writeHead(status: Int, headers: [(String, String)], contentLength: Int?, date: String, close: Bool, into out: inout ByteBuffer) {
        out.writeString("HTTP/1.1 \(status) \(reasonPhrase(status))\r\n")
        out.writeString("Date: \(date)\r\n")
        for (name, value) in headers {
            out.writeString(name)
            out.writeString(": ")
            out.writeString(value)
            out.writeString("\r\n")
        }
        if let contentLength { out.writeString("Content-Length: \(contentLength)\r\n") }
        if close { out.writeString("Connection: close\r\n") }
        out.writeString("\r\n")
    }

    /// The RFC 9110 reason phrase of `status`; empty for codes without one (RFC 9112 §4
    /// allows an empty reason, and clients must not rely on it).
    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 451: "Unavailable For Legal Reasons"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 511: "Network Authentication Required"
        default: ""
        }
    }
}

/// Minimal JSON string escaping, shared by error bodies and the access log.
enum JSONText {
    static func appendQuoted(_ text: String, to out: inout String) {
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }
}
