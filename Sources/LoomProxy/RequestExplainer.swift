import LoomConfig
import LoomHTTP
import LoomRouting
import NIOCore

/// `loom explain`: what a configuration does with one request, without sending it. The
/// request goes through the same steps as on the wire (head parser, path normalization,
/// snapshot, router, rewrite, `HeadWriter`), so the report shows what loom would really send.
package enum RequestExplainer {
    package struct Request {
        package var method: String
        /// `http://host[:port]/path?query`, or an origin-form `/path?query` (then the host comes
        /// from a `Host` header, if any).
        package var url: String
        package var headers: [(name: String, value: String)]
        /// The address the request is explained as coming from (for `X-Forwarded-For` and
        /// `trusted_proxies`).
        package var clientIP: String

        package init(method: String, url: String, headers: [(name: String, value: String)] = [], clientIP: String = "127.0.0.1") {
            self.method = method
            self.url = url
            self.headers = headers
            self.clientIP = clientIP
        }
    }

    /// Why a request cannot be explained (it is not one a client could send).
    package struct Problem: Error, CustomStringConvertible {
        package var description: String
    }

    package struct Report {
        /// As `loom explain` prints it.
        package var text: String
        /// Whether a route matched (else loom answers 400, 404 or 405 by itself).
        package var matched: Bool
    }

    package static func explain(_ configuration: LoomConfiguration, _ request: Request) throws(Problem) -> Report {
        let (target, authority, port) = try split(request.url)
        var raw = "\(request.method) \(target) HTTP/1.1\r\n"
        if let authority, !request.headers.contains(where: { $0.name.lowercased() == "host" }) { raw += "Host: \(authority)\r\n" }
        for header in request.headers { raw += "\(header.name): \(header.value)\r\n" }
        raw += "\r\n"

        let snapshot = ProxySnapshot(configuration)
        var buffer = ByteBuffer(string: raw)
        var parser = HTTP1HeadParser(limits: snapshot.requestLimits)
        let parsed: HTTPRequestHead?
        do {
            parsed = try parser.parseRequestHead(&buffer)
        } catch {
            return Report(text: "loom answers \(GatewayError(.invalidRequest(error)).status): \(error)\n", matched: false)
        }
        guard let head = parsed else { throw Problem(description: "the request head is incomplete") }
        var lines = ["\(head.method) \(head.target) (host \(head.host.map { "\"\($0)\"" } ?? "none"), path \"\(head.path)\")"]
        guard let path = RequestPath.normalized(head.path) else {
            lines.append("loom answers 400: the path has \".\" or \"..\" segments")
            return Report(text: lines.joined(separator: "\n") + "\n", matched: false)
        }
        if path != head.path { lines.append("normalized path: \"\(path)\"") }
        let query = head.query

        // The verdicts come from the reference matcher, one condition at a time; the answer
        // is the data path's own router (they agree: RouterDifferentialTests).
        let linear = LinearRouter(orderedRoutes: configuration.orderedRoutes)
        var explanation = linear.explain(method: head.method, host: head.host, path: path, query: query, headers: head.headers)
        let outcome = snapshot.router.match(method: head.method, host: head.host, path: path, query: query, headers: head.headers)
        if outcome != explanation.outcome {
            lines.append("note: the route table and the reference matcher disagree on this request (a bug in loom); showing the route table's answer")
            explanation.outcome = outcome
        }
        lines.append("")
        lines.append("routes in matching order (priority, then file order):")
        for verdict in explanation.verdicts {
            let label = "  \(verdict.index + 1). \(verdict.route.name)"
            if verdict.reasons.isEmpty {
                lines.append(label + ": matches")
            } else {
                lines.append(label + ": no, " + verdict.reasons.joined(separator: "; "))
            }
        }
        lines.append("")
        var matched = false
        switch explanation.outcome {
        case .notFound:
            lines.append("loom answers 404: no route matches")
        case .methodNotAllowed(let allowed):
            lines.append("loom answers 405 with Allow: \(allowed.joined(separator: ", ")): routes match everything but the method")
        case .matched(let index, let captures):
            let answer = matchedRoute(
                snapshot.routes[index], captures: captures, verdict: explanation.verdicts.last!, head: head, path: path,
                port: port, request: request, snapshot: snapshot)
            lines += answer.lines
            matched = !answer.refused
        }
        return Report(text: lines.joined(separator: "\n") + "\n", matched: matched)
    }

    private static func matchedRoute(
        _ route: ProxySnapshot.Route, captures: PathCaptures, verdict: RouteExplanation.Verdict, head: HTTPRequestHead,
        path: String, port: Int, request: Request, snapshot: ProxySnapshot
    ) -> (lines: [String], refused: Bool) {
        var lines = ["matched route \"\(route.config.name)\""]
        if !verdict.parameters.isEmpty {
            lines.append("parameters: " + verdict.parameters.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ", "))
        }
        switch route.config.action {
        case .respond(let response):
            lines.append("loom answers \(response.status) itself (\(response.body.utf8.count) body bytes)")
            return (lines, false)
        case .redirect(let redirect):
            let location = redirect.location(path: path, captures: captures, names: route.parameterNames, query: head.query)
            lines.append("loom answers \(redirect.status) with Location: \(location)")
            return (lines, false)
        case .files(let files):
            lines.append("loom serves files from \(files.root) (index: \(files.index.joined(separator: ", ")))")
            return (lines, false)
        case .proxy(let upstreamName):
            // The endpoint a first request on a fresh event loop would get (`random` explained
            // with 0; a keyed strategy without its key shows the round-robin fallback).
            var rotation = EndpointPicker.State()
            guard let upstreamIndex = route.upstreamIndex else {
                lines.append("loom answers 503: upstream \"\(upstreamName)\" does not exist")
                return (lines, true)
            }
            let upstream = snapshot.upstreams[upstreamIndex]
            let index = upstream.picker.pick(head, path: path, clientIP: request.clientIP, state: &rotation, random: 0)
            lines.append("upstream \"\(upstreamName)\": \(upstream.picker.strategyDescription) over \(upstream.endpoints.map(\.description).joined(separator: ", "))")
            // Filters are named, not run: their answers depend on state (rate limits) and on
            // who asks (ip_filter), which explain does not model.
            let filterNames = route.filters.filters.map(\.name)
            lines.append("filters: " + (filterNames.isEmpty ? "none" : filterNames.joined(separator: ", ") + " (run in this order; not evaluated here)"))
            let timeouts = route.timeouts.configured
            let format = DurationParser.format
            lines.append("timeouts: connect \(format(timeouts.connect)), response header \(format(timeouts.responseHeader)), "
                + "idle \(format(timeouts.idle)), whole request \(timeouts.request.map(format) ?? "unlimited"), tunnel \(format(timeouts.tunnel))")
            if GRPC.isCall(head) {
                let deadline = head.headers.firstValue(named: "grpc-timeout").flatMap(GRPC.timeout)
                lines.append("gRPC call: " + (deadline.map { "its grpc-timeout (\(format($0))) bounds it too" } ?? "no grpc-timeout")
                    + "; loom's own failures answer it with a gRPC status")
            }
            let given = head.headers.firstValue(named: snapshot.requestIDHeaderLowercased)
            let requestID = RequestID(given: given.flatMap { RequestIDGenerator.isWellFormed($0) ? $0 : nil } ?? "<generated>")
            guard let target = DownstreamHandler.forwardTarget(head, path: path, query: head.query, route: route, captures: captures) else {
                lines.append("loom answers 400: \(GatewayError(.rewrittenPathInvalid).message)")
                return (lines, true)
            }
            let http2 = upstream.config.protocol.isHTTP2
            let context = HeadWriter.RequestContext(
                target: target,
                clientIP: request.clientIP,
                clientTrusted: snapshot.trustedProxies.contains(try? SocketAddress(ipAddress: request.clientIP, port: 0)),
                listenerPort: port, requestID: requestID, endpointAuthority: upstream.authorities[index],
                rules: route.requestHeaders,
                // A WebSocket handshake goes with its upgrade fields, as the data path sends it
                // (not to an HTTP/2 upstream: RFC 8441 upstream is not built).
                upgrade: !http2 && WebSocketUpgrade.key(of: head) != nil,
                http2Upstream: http2)
            var out = ByteBuffer()
            HeadWriter.writeRequestHead(head, context, snapshot: snapshot, into: &out)
            lines.append("")
            lines.append("sent to \(upstream.endpoints[index])\(http2 ? " over HTTP/2 (\(upstream.config.protocol.rawValue))" : "") as (from client \(request.clientIP)):")
            if http2 {
                // The fields of the HEADERS frame `HTTP2UpstreamRequestTranslator` makes of it.
                var parser = HTTP1HeadParser()
                if let forwarded = try? parser.parseRequestHead(&out) {
                    let fields = HTTP2UpstreamRequestTranslator.fields(of: forwarded, scheme: upstream.config.tls == nil ? "http" : "https")
                    lines += fields.map { "  \($0.name): \($0.value)" }
                }
            } else {
                let text = String(buffer: out).split(separator: "\r\n", omittingEmptySubsequences: true)
                lines += text.map { "  " + $0 }
            }
            return (lines, false)
        }
    }

    /// (request-target, authority for Host, listener port) from an absolute or origin-form URL.
    static func split(_ url: String) throws(Problem) -> (target: String, authority: String?, port: Int) {
        if url.hasPrefix("/") { return (url, nil, 80) }
        let scheme: String
        if url.lowercased().hasPrefix("http://") {
            scheme = "http"
        } else if url.lowercased().hasPrefix("https://") {
            scheme = "https"
        } else {
            throw Problem(description: "\"\(url)\" is not an http(s) URL or a path starting with \"/\"")
        }
        let rest = url.dropFirst(scheme.count + 3)
        let slash = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = String(rest[..<slash])
        guard !authority.isEmpty else { throw Problem(description: "\"\(url)\" has no host") }
        var target = String(rest[slash...])
        if !target.hasPrefix("/") { target = "/" + target }
        var port = scheme == "https" ? 443 : 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"), let given = Int(authority[authority.index(after: colon)...]) {
            port = given
        }
        return (target, authority, port)
    }
}
