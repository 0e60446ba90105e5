import LoomConfig
import LoomFilters
import LoomHTTP
import NIOCore

/// A Proxy-Wasm plugin as one filter of the chain: each exchange gets a stream context in
/// its event loop's instance, and the filter phases call the plugin's callbacks.
///
/// - `onRequestHeaders`: `on_context_create`, then `on_request_headers` with the request's
///   fields and pseudo-headers; the map the plugin leaves becomes the request's changes.
///   Pause holds the request until the plugin continues it (or answers, or closes it).
/// - Bodies: `on_request_body` / `on_response_body` per chunk through a `BodyTransform`;
///   a paused body is held (bounded) and offered again, grown, with the next chunk.
/// - `onResponseHeaders`: `on_response_headers` with `:status` and the fields.
/// - `onLog`: `on_done`, `on_log`, `on_delete`.
///
/// A failure of the plugin (a trap, a call over its time budget, memory past its limit, a
/// host-call misuse the host cannot honour) fails the request with 500, or lets it through
/// unchanged when the plugin is `fail_open`; either way it is logged and the instance is
/// replaced before the next request.
public struct PluginFilter: HTTPFilter {
    let runtime: PluginRuntime
    /// Where the exchange's stream waits in `FilterRequest.attachments` between phases.
    private let key: String

    public init(runtime: PluginRuntime) {
        self.runtime = runtime
        key = "wasm:" + runtime.plugin.name
    }

    public var name: String { "plugin \(runtime.plugin.name)" }
    public var needsConnectionAddresses: Bool { true }
    public var needsInterrupt: Bool { true }

    /// Bytes of a body a plugin may hold while it pauses.
    static let bodyBufferLimit = 1024 * 1024

    /// The exchange's stream in its instance, kept in the request between phases.
    /// Confined to the exchange's event loop, like the instance it lives in (the pause's
    /// closures run there too).
    final class Exchange: @unchecked Sendable {
        let vm: PluginVM
        let stream: PluginStream
        /// The request map as sent to `on_request_headers`, to see what the plugin changed.
        var originalRequest: HeaderMap
        /// The response map as sent to `on_response_headers`, likewise.
        var receivedResponse: HeaderMap?

        init(vm: PluginVM, stream: PluginStream, originalRequest: HeaderMap) {
            self.vm = vm
            self.stream = stream
            self.originalRequest = originalRequest
        }
    }

    /// Why a request failed in a plugin; logged, and answered 500 unless `fail_open`.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private func failed(_ reason: String, phase: String) throws {
        runtime.plugin.log(.error, "\(phase) failed: \(reason)")
        if !runtime.plugin.failOpen { throw Failure(description: reason) }
    }

    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        let vm: PluginVM
        switch runtime.vm(loop: request.loopIndex) {
        case .success(let running): vm = running
        case .failure(let error):
            try failed("\(error)", phase: "request headers")
            return .continue
        }
        do {
            let stream = try vm.createStream()
            stream.attributes = StreamAttributes(
                routeName: request.routeName, routeParameters: request.parameters, routeRemainder: request.remainder,
                requestID: request.requestID, sourceAddress: request.sourceAddress,
                destinationAddress: request.destinationAddress, scheme: request.scheme, protocolName: request.protocolName,
                security: request.security)
            stream.requestHeaders = Self.requestMap(request.head, scheme: request.scheme)
            stream.interrupt = request.interrupt
            let exchange = Exchange(vm: vm, stream: stream, originalRequest: stream.requestHeaders)
            request.attachments[key] = exchange
            let endOfStream = request.head.framing == .none
            let action = try vm.streamCallback(
                .requestHeaders, context: stream.id, [UInt64(stream.requestHeaders.pairs.count), endOfStream ? 1 : 0])
            if Self.stops(action), stream.localResponse == nil, !stream.closed {
                return .pause(FilterPause { resumer in
                    stream.resumeRequest = {
                        resumer.resume { request in try self.decision(exchange, &request) }
                    }
                })
            }
            return try decision(exchange, &request)
        } catch let error as WasmError {
            try failed("\(error)", phase: "on_request_headers")
            return .continue
        }
    }

    /// What the plugin decided once its request-headers phase is over.
    private func decision(_ exchange: Exchange, _ request: inout FilterRequest) throws -> FilterDecision {
        let stream = exchange.stream
        if let failure = stream.failure {
            try failed(failure, phase: "paused request")
            return .continue
        }
        if let response = stream.localResponse { return .respond(response) }
        if stream.closed { return .reject(resetRejection) }
        switch Self.apply(stream.requestHeaders, over: exchange.originalRequest, to: &request) {
        case .failure(let problem):
            try failed(problem.description, phase: "on_request_headers")
            return .continue
        case .success(let skipped) where !skipped.isEmpty:
            runtime.plugin.log(.warn, "changes to \(skipped.joined(separator: ", ")) ignored: loom writes those fields itself")
        case .success:
            break
        }
        stream.phase = .requestBody
        if exchange.vm.exports(.requestBody) || exchange.vm.exports(.requestTrailers) {
            request.transformBody(PluginBodyTransform(filter: self, exchange: exchange, direction: .request))
        }
        return .continue
    }

    public func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
        guard let exchange = request.attachments[key] as? Exchange else { return }
        let stream = exchange.stream
        if let broken = exchange.vm.broken {
            // Another exchange's failure took the instance (and this stream's state) with it.
            if stream.failure == nil { try failed("instance unusable after an earlier failure: \(broken)", phase: "on_response_headers") }
            return
        }
        stream.phase = .responseHeaders
        stream.attributes.responseCode = response.status
        stream.attributes.upstreamAddress = response.upstreamAddress
        stream.canReplaceResponse = response.canBeHeld
        defer { if response.held == nil { stream.canReplaceResponse = false } }
        let status = response.status, fields = response.receivedFields
        stream.receivedResponse = { HeaderMap([(":status", String(status))] + fields().map { ($0.name, $0.value) }) }
        guard exchange.vm.exports(.responseHeaders) else { return startResponseBody(exchange, &response) }
        guard let received = stream.responseHeaders else { return }
        exchange.receivedResponse = received
        let action: UInt64?
        do {
            action = try exchange.vm.streamCallback(.responseHeaders, context: stream.id, [UInt64(received.pairs.count), response.hasBody ? 0 : 1])
        } catch let error as WasmError {
            // A plugin that failed here (and is fail-open) does not see the body either.
            try failed("\(error)", phase: "on_response_headers")
            return
        }
        if Self.stops(action), stream.localResponse == nil, !stream.closed {
            guard response.canBeHeld else {
                try failed("paused the response headers of an answer loom makes itself, which cannot wait", phase: "on_response_headers")
                return
            }
            // Held until the plugin continues it (after an HTTP call, say), answers, or closes it.
            response.hold(FilterResponsePause { resumer in
                stream.resumeResponse = {
                    resumer.resume { response in
                        stream.canReplaceResponse = false
                        try self.responseDecision(exchange, &response)
                    }
                }
            })
            return
        }
        try responseDecision(exchange, &response)
    }

    /// What the plugin decided once its response-headers phase is over: an answer in place of
    /// the upstream's, or its changes to the response map, then the body callbacks.
    private func responseDecision(_ exchange: Exchange, _ response: inout FilterResponse) throws {
        let stream = exchange.stream
        if let failure = stream.failure {
            try failed(failure, phase: "held response")
            return
        }
        if let answer = stream.localResponse, response.canBeHeld {
            response.answer(answer)
            return
        }
        if stream.closed {
            guard response.canBeHeld else {
                try failed("closed the stream of an answer loom makes itself, which it cannot drop", phase: "on_response_headers")
                return
            }
            response.resetStream(resetRejection.message)
            return
        }
        if let changed = stream.responseHeaders, let received = exchange.receivedResponse, changed != received {
            if changed.value(":status") != String(response.status) {
                try failed("changed :status, which loom does not support", phase: "on_response_headers")
                return
            }
            let skipped = Self.diff(changed, over: received) { response.changes.remove($0) } add: { response.changes.add($0, $1) }
            if !skipped.isEmpty { runtime.plugin.log(.warn, "changes to \(skipped.joined(separator: ", ")) ignored: loom writes those fields itself") }
        }
        startResponseBody(exchange, &response)
    }

    /// On to the response body: the plugin's body and trailer callbacks, if it has them.
    private func startResponseBody(_ exchange: Exchange, _ response: inout FilterResponse) {
        exchange.stream.phase = .responseBody
        if exchange.vm.exports(.responseBody) || exchange.vm.exports(.responseTrailers) {
            response.transformBody(PluginBodyTransform(filter: self, exchange: exchange, direction: .response))
        }
    }

    public func onLog(_ entry: FilterLogEntry, request: FilterRequest) {
        guard let exchange = request.attachments[key] as? Exchange else { return }
        exchange.stream.attributes.responseCode = entry.status
        if let address = entry.upstreamAddress { exchange.stream.attributes.upstreamAddress = address }
        exchange.vm.finish(exchange.stream)
    }

    /// A body chunk through the plugin's body callback.
    func body(_ chunk: ByteBuffer, endOfStream: Bool, exchange: Exchange, direction: PluginBodyTransform.Direction) throws -> ByteBuffer {
        let stream = exchange.stream
        let callback: PluginCallback = direction == .request ? .requestBody : .responseBody
        guard exchange.vm.exports(callback) else { return chunk }
        if let broken = exchange.vm.broken {
            // The instance failed (in this exchange or another): what the plugin held goes
            // on if it is fail-open; else the exchange fails (once).
            if stream.failure == nil {
                stream.failure = broken
                try failed("instance unusable after an earlier failure: \(broken)", phase: callback.name)
            }
            return releaseBody(stream, direction, adding: chunk)
        }
        let trailers = direction == .request ? stream.requestTrailers : stream.responseTrailers
        // After a trailer section the body has ended (Envoy calls no body callback with
        // end_of_stream then): what the plugin held goes on.
        if trailers != nil { return releaseBody(stream, direction, adding: chunk) }
        let bytes = chunk.readableBytesView
        switch direction {
        case .request:
            stream.phase = .requestBody
            stream.requestBody += bytes
        case .response:
            stream.phase = .responseBody
            stream.responseBody += bytes
        }
        let held = direction == .request ? stream.requestBody.count : stream.responseBody.count
        let action: UInt64?
        do {
            action = try exchange.vm.streamCallback(callback, context: stream.id, [UInt64(held), endOfStream ? 1 : 0])
        } catch let error as WasmError {
            try failed("\(error)", phase: callback.name)
            return releaseBody(stream, direction)
        }
        try answeredOrClosed(stream, direction)
        if Self.stops(action) {
            if endOfStream {
                // The end of the body waits until the plugin continues (after an HTTP call,
                // say), answers or closes the stream; what it held is then passed on.
                throw BodyEndHold { finish in
                    // The bytes are taken once the host call that continued has returned (a
                    // `proxy_set_buffer_bytes` after `proxy_continue_stream` still counts).
                    let resume = { finish { try self.heldBodyEnd(exchange, direction) } }
                    switch direction {
                    case .request: stream.resumeRequest = resume
                    case .response: stream.resumeResponse = resume
                    }
                }
            }
            let current = direction == .request ? stream.requestBody.count : stream.responseBody.count
            if current > Self.bodyBufferLimit {
                if direction == .request {
                    throw FilterRejection(status: 413, code: "payload_too_large", message: "plugin \(runtime.plugin.name) holds at most \(Self.bodyBufferLimit) bytes of a body")
                }
                throw Failure(description: "held more than \(Self.bodyBufferLimit) bytes of the response body")
            }
            return ByteBuffer()
        }
        return releaseBody(stream, direction)
    }

    /// The plugin let a held body end go on: what it holds, unless it failed, answered or
    /// closed the stream meanwhile.
    private func heldBodyEnd(_ exchange: Exchange, _ direction: PluginBodyTransform.Direction) throws -> ByteBuffer {
        let stream = exchange.stream
        if let failure = stream.failure { try failed(failure, phase: "held body") }
        try answeredOrClosed(stream, direction)
        return releaseBody(stream, direction)
    }

    /// Throws for what the plugin did to the stream in a body or trailers callback: a local
    /// response refuses the request with that response (the rest of its body is not read),
    /// and closing the stream (or answering once the response has started) resets it.
    private func answeredOrClosed(_ stream: PluginStream, _ direction: PluginBodyTransform.Direction) throws {
        if direction == .request, let response = stream.localResponse {
            throw FilterRejection(answer: response, code: "plugin_response")
        }
        if stream.closed { throw resetRejection }
    }

    /// `proxy_close_stream`, as Envoy's `resetStream`: the client gets no answer (its HTTP/2
    /// stream is reset, its HTTP/1.1 connection closed).
    static func reset(by plugin: String) -> FilterRejection {
        .reset("stream reset by plugin \(plugin)")
    }

    private var resetRejection: FilterRejection { Self.reset(by: runtime.plugin.name) }

    /// Everything the plugin held or changed (and `adding`), handed on; its buffer emptied.
    private func releaseBody(_ stream: PluginStream, _ direction: PluginBodyTransform.Direction, adding chunk: ByteBuffer = ByteBuffer()) -> ByteBuffer {
        switch direction {
        case .request:
            defer { stream.requestBody = [] }
            return ByteBuffer(bytes: stream.requestBody + chunk.readableBytesView)
        case .response:
            defer { stream.responseBody = [] }
            return ByteBuffer(bytes: stream.responseBody + chunk.readableBytesView)
        }
    }

    /// A trailer section through `on_request_trailers` / `on_response_trailers`: the fields
    /// to send on (the plugin may change the response's). Pause holds them, and the end of
    /// the body, until the plugin continues (after an HTTP call, say), answers or closes
    /// the stream.
    func trailers(_ fields: [HeaderPair], exchange: Exchange, direction: PluginBodyTransform.Direction) throws -> [HeaderPair] {
        let stream = exchange.stream
        let callback: PluginCallback = direction == .request ? .requestTrailers : .responseTrailers
        let map = HeaderMap(fields.map { ($0.name, $0.value) })
        switch direction {
        case .request:
            stream.phase = .requestTrailers
            stream.requestTrailers = map
        case .response:
            stream.phase = .responseTrailers
            stream.responseTrailers = map
        }
        guard exchange.vm.broken == nil else { return fields }
        let called = Result { () throws(WasmError) in try exchange.vm.streamCallback(callback, context: stream.id, [UInt64(fields.count)]) }
        guard case .success(let action) = called else {
            if case .failure(let error) = called { try failed("\(error)", phase: callback.name) }
            return fields
        }
        if Self.stops(action) {
            throw TrailersHold { finish in
                // The fields are taken once the host call that continued has returned.
                let resume = { finish { try self.heldTrailers(exchange, direction, fields) } }
                switch direction {
                case .request: stream.resumeRequest = resume
                case .response: stream.resumeResponse = resume
                }
            }
        }
        return try trailersToSend(stream, direction, fields)
    }

    /// The plugin let held trailers go on: as it left them, unless it failed, answered or
    /// closed the stream meanwhile.
    private func heldTrailers(_ exchange: Exchange, _ direction: PluginBodyTransform.Direction, _ fields: [HeaderPair]) throws -> [HeaderPair] {
        if let failure = exchange.stream.failure { try failed(failure, phase: "held trailers") }
        return try trailersToSend(exchange.stream, direction, fields)
    }

    /// What follows a trailers callback: the response's trailers as the plugin left them
    /// (the request's as received: they are read-only), or a refusal or failure for what it
    /// did to the stream.
    private func trailersToSend(_ stream: PluginStream, _ direction: PluginBodyTransform.Direction, _ fields: [HeaderPair]) throws -> [HeaderPair] {
        try answeredOrClosed(stream, direction)
        guard direction == .response, let changed = stream.responseTrailers else { return fields }
        return changed.pairs.map { HeaderPair(name: $0.name, value: $0.value) }
    }

    /// Whether a callback's action holds the data: as Envoy's host reads it, only Continue
    /// (0) and ContinueAndEndStream (2) let it go on; Pause and the C++ SDK's
    /// StopAllIteration… values (and anything unknown) stop it. No export: continue.
    static func stops(_ action: UInt64?) -> Bool {
        guard let action else { return false }
        return action != 0 && action != 2
    }

    // MARK: - Maps

    /// The request as plugins see it: the pseudo-headers first, then every field.
    static func requestMap(_ head: HTTPRequestHead, scheme: String = "http") -> HeaderMap {
        var pairs: [(String, String)] = [
            (":method", head.method), (":scheme", scheme), (":authority", head.host ?? ""), (":path", head.target),
        ]
        for index in 0..<head.headers.count {
            pairs.append((head.headers.name(at: index), head.headers.value(at: index)))
        }
        return HeaderMap(pairs)
    }

    /// The plugin's request map as changes to the request: the managed fields it changed
    /// (left out), or what loom cannot apply (a changed method).
    static func apply(_ changed: HeaderMap, over original: HeaderMap, to request: inout FilterRequest) -> Result<[String], Failure> {
        guard changed != original else { return .success([]) }
        // The common case, fields added after the received ones (none of them the request
        // line or `Host`): nothing else to check.
        if changed.pairs.count > original.pairs.count, changed.pairs.starts(with: original.pairs),
            !changed.pairs[original.pairs.count...].contains(where: { $0.name.hasPrefix(":") || $0.name == "host" })
        {
            return .success(diff(changed, over: original) { request.upstreamChanges.remove($0) } add: { request.upstreamChanges.add($0, $1) })
        }
        let pseudo = original.pairs.prefix { $0.name.hasPrefix(":") }
        if !changed.pairs.starts(with: pseudo) {
            if changed.value(":method") != original.value(":method") { return .failure(Failure(description: "changed :method, which loom does not support")) }
            if changed.value(":scheme") != original.value(":scheme") { return .failure(Failure(description: "changed :scheme, which loom does not support")) }
            if let path = changed.value(":path"), path != original.value(":path") {
                guard HTTPFieldSyntax.isValidOriginTarget(path) else {
                    return .failure(Failure(description: "set :path to \"\(path)\", which is not an origin-form target"))
                }
                request.setTarget(path)
            }
        }
        // :authority (or, from an HTTP/1.1 client, Host: the map has both): the request was
        // routed already, and goes upstream with it as its Host. A map without them keeps
        // the client's.
        let authority = changed.value(":authority") ?? original.value(":authority")
        let host = changed.value("host") ?? original.value("host")
        if authority != original.value(":authority") || host != original.value("host") {
            let value = authority != original.value(":authority") ? authority : host
            guard let value, HTTPFieldSyntax.isValidAuthority(value) else {
                return .failure(Failure(description: "set :authority to \"\(value ?? "")\", which is not a host"))
            }
            request.setAuthority(value)
        }
        let skipped = diff(changed, over: original) { request.upstreamChanges.remove($0) } add: { request.upstreamChanges.add($0, $1) }
        return .success(skipped.filter { $0 != "host" })
    }

    /// Calls `remove` then `add` for each regular field name whose values differ. Fields
    /// loom writes itself (framing, connection management, `Date`: `HeaderPair.managedNames`)
    /// stay loom's: a plugin's changes to them are left out, and their names returned for
    /// the log.
    @discardableResult
    static func diff(_ changed: HeaderMap, over original: HeaderMap, remove: (String) -> Void, add: (String, String) -> Void) -> [String] {
        var changes: [(name: String, values: [String])] = []
        // The common case, a plugin that only added fields: the old map is a prefix.
        if changed.pairs.count > original.pairs.count, changed.pairs.starts(with: original.pairs),
           !changed.pairs[original.pairs.count...].contains(where: { pair in pair.name.hasPrefix(":") || original.pairs.contains { $0.name == pair.name } })
        {
            changes = changed.pairs[original.pairs.count...].map { ($0.name, [$0.value]) }
        } else {
            var names: [String] = []
            for pair in original.regular + changed.regular where !names.contains(pair.name) { names.append(pair.name) }
            for name in names {
                let before = original.regular.filter { $0.name == name }.map(\.value)
                let after = changed.regular.filter { $0.name == name }.map(\.value)
                if before != after { changes.append((name, after)) }
            }
        }
        var skipped: [String] = []
        for change in changes {
            if HeaderPair.managedNames.contains(change.name) {
                if !skipped.contains(change.name) { skipped.append(change.name) }
                continue
            }
            if original.pairs.contains(where: { $0.name == change.name }) { remove(change.name) }
            for value in change.values { add(change.name, value) }
        }
        return skipped
    }
}

/// Hands one direction of an exchange's body to the plugin's body callback.
final class PluginBodyTransform: BodyTransform {
    enum Direction { case request, response }

    let filter: PluginFilter
    let exchange: PluginFilter.Exchange
    let direction: Direction

    init(filter: PluginFilter, exchange: PluginFilter.Exchange, direction: Direction) {
        self.filter = filter
        self.exchange = exchange
        self.direction = direction
    }

    func transform(_ chunk: ByteBuffer, endOfStream: Bool) throws -> ByteBuffer {
        try filter.body(chunk, endOfStream: endOfStream, exchange: exchange, direction: direction)
    }

    func trailers(_ fields: [HeaderPair]) throws -> [HeaderPair] {
        try filter.trailers(fields, exchange: exchange, direction: direction)
    }
}
