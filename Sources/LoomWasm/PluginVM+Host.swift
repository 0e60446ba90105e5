import LoomConfig
import LoomFilters
import LoomHTTP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `env.proxy_*` host functions (ABI v0.2.1), as Envoy's host implements them. Each
/// returns a `proxy_status_t`; every pointer and length from the guest is checked
/// (`INVALID_MEMORY_ACCESS`, never a host crash); data handed back is copied into memory the
/// guest's allocator gives (the guest frees it).
extension PluginVM {
    var memory: any LinearMemory { instance.memory }

    /// Charges host work to the running call's budget: the call itself (once per call, by
    /// `HostImports`), and the bytes or items it handles.
    func charge(bytes: Int = 0) {
        instance.consumeFuel(bytes == 0 ? PluginContext.hostCallFuel : UInt64(bytes / 16))
    }

    /// Copies `bytes` into fresh guest memory and writes its address and size to the
    /// out-parameters (address 0 for no bytes, as Envoy does).
    func hand(_ bytes: [UInt8], to pointerOut: UInt32, _ sizeOut: UInt32) throws -> ProxyStatus {
        if !bytes.isEmpty { charge(bytes: bytes.count) }
        var pointer: UInt32 = 0
        if !bytes.isEmpty {
            guard let allocated = try allocate(bytes.count), memory.writeBytes(bytes, at: allocated) else { return .invalidMemoryAccess }
            pointer = allocated
        }
        guard memory.writeU32(pointer, at: pointerOut), memory.writeU32(UInt32(bytes.count), at: sizeOut) else { return .invalidMemoryAccess }
        return .ok
    }

    // MARK: - Logging, time, status

    func log(_ a: HostArguments) throws -> ProxyStatus {
        guard let level = ProxyLogLevel(rawValue: a.u32(0)) else { return .badArgument }
        guard let message = memory.string(at: a.u32(1), count: a.u32(2)) else { return .invalidMemoryAccess }
        charge(bytes: message.utf8.count)
        plugin.log(level, message)
        return .ok
    }

    func getLogLevel(_ a: HostArguments) throws -> ProxyStatus {
        memory.writeU32(plugin.logLevel.rawValue, at: a.u32(0)) ? .ok : .invalidMemoryAccess
    }

    func getCurrentTime(_ a: HostArguments) throws -> ProxyStatus {
        memory.writeU64(WASIClock.nanoseconds(CLOCK_REALTIME), at: a.u32(0)) ? .ok : .invalidMemoryAccess
    }

    func getStatus(_ a: HostArguments) throws -> ProxyStatus {
        guard memory.writeU32(lastStatus.code, at: a.u32(0)) else { return .invalidMemoryAccess }
        return try hand(Array(lastStatus.message.utf8), to: a.u32(1), a.u32(2))
    }

    func setEffectiveContext(_ a: HostArguments) throws -> ProxyStatus {
        let id = a.u32(0)
        guard id == rootID || streams[id] != nil else { return .badArgument }
        effectiveContext = id
        return .ok
    }

    /// `proxy_done` finishes a retired root context that answered `on_done` with false:
    /// its `on_delete` runs once the current call returns (as Envoy defers it). NOT_FOUND
    /// when no root context is waiting.
    func done(_ a: HostArguments) throws -> ProxyStatus {
        guard root == .waitingForDone, let loop = environment.eventLoop else { return .notFound }
        root = .deleting
        let box = self.box
        loop.execute { box.vm?.deleteRoot() }
        return .ok
    }

    func callForeignFunction(_ a: HostArguments) throws -> ProxyStatus {
        // No foreign functions are registered: every name is unknown.
        guard memory.contains(a.u32(0), a.u32(1)), memory.contains(a.u32(2), a.u32(3)) else { return .invalidMemoryAccess }
        return .notFound
    }

    // MARK: - Buffers

    /// The bytes of buffer `type` now, or nil when there is no such buffer here.
    private func buffer(_ type: ProxyBufferType) -> [UInt8]? {
        switch type {
        case .vmConfiguration: plugin.vmConfiguration
        case .pluginConfiguration: plugin.configuration
        case .httpCallResponseBody: callResponse?.body
        case .grpcReceiveBuffer: grpcMessage
        case .httpRequestBody: currentStream.flatMap { $0.phase == .requestBody ? $0.requestBody : nil }
        case .httpResponseBody: currentStream.flatMap { $0.phase == .responseBody ? $0.responseBody : nil }
        default: nil
        }
    }

    func getBufferBytes(_ a: HostArguments) throws -> ProxyStatus {
        guard let type = ProxyBufferType(rawValue: a.u32(0)) else { return .badArgument }
        guard let bytes = buffer(type) else { return .notFound }
        let start = Int(a.u32(1)), maxSize = Int(a.u32(2))
        guard start <= bytes.count else { return .badArgument }
        let end = start + min(maxSize, bytes.count - start)
        return try hand(Array(bytes[start..<end]), to: a.u32(3), a.u32(4))
    }

    /// Replaces `size` bytes at `start` of a body with the guest's bytes: `start` 0 and
    /// `size` 0 prepend, a `start` at or past the end appends, `size` covering the rest
    /// replaces it (Envoy's cases), and anything in between replaces that range.
    func setBufferBytes(_ a: HostArguments) throws -> ProxyStatus {
        guard let type = ProxyBufferType(rawValue: a.u32(0)) else { return .badArgument }
        guard let data = memory.bytes(at: a.u32(3), count: a.u32(4)) else { return .invalidMemoryAccess }
        charge(bytes: data.count)
        guard let stream = currentStream else { return .notFound }
        func splice(_ body: inout [UInt8]) {
            let start = min(Int(a.u32(1)), body.count)
            let end = min(start + Int(a.u32(2)), body.count)
            body.replaceSubrange(start..<end, with: data)
        }
        switch (type, stream.phase) {
        case (.httpRequestBody, .requestBody): splice(&stream.requestBody)
        case (.httpResponseBody, .responseBody): splice(&stream.responseBody)
        default: return .notFound
        }
        return .ok
    }

    func getBufferStatus(_ a: HostArguments) throws -> ProxyStatus {
        guard let type = ProxyBufferType(rawValue: a.u32(0)) else { return .badArgument }
        guard let bytes = buffer(type) else { return .notFound }
        guard memory.writeU32(UInt32(bytes.count), at: a.u32(1)), memory.writeU32(0, at: a.u32(2)) else { return .invalidMemoryAccess }
        return .ok
    }

    // MARK: - Header maps

    private func map(_ raw: UInt32) -> Result<HeaderMap, ProxyStatus> {
        guard let type = ProxyMapType(rawValue: raw) else { return .failure(.badArgument) }
        let map: HeaderMap? = switch type {
        case .httpCallResponseHeaders: callResponseHeaders
        case .httpCallResponseTrailers: callResponseTrailers
        case .grpcReceiveInitialMetadata, .grpcReceiveTrailingMetadata: grpcMetadata(type)
        default: currentStream?.map(type)
        }
        guard let map else { return .failure(.notFound) }
        return .success(map)
    }

    /// Applies `change` to map `raw` of the current stream, in place.
    private func changeMap(_ raw: UInt32, _ change: (inout HeaderMap) -> Void) -> ProxyStatus {
        guard let type = ProxyMapType(rawValue: raw) else { return .badArgument }
        guard let stream = currentStream else { return .notFound }
        return stream.changeMap(type, change)
    }

    /// A field name and value from the guest, refused when either could split a head.
    private func field(_ a: HostArguments, name: Int, value: Int?) -> Result<(String, String), ProxyStatus> {
        guard let name = memory.string(at: a.u32(name), count: a.u32(name + 1)) else { return .failure(.invalidMemoryAccess) }
        var text = ""
        if let value {
            guard let read = memory.string(at: a.u32(value), count: a.u32(value + 1)) else { return .failure(.invalidMemoryAccess) }
            text = read
        }
        charge(bytes: name.utf8.count + text.utf8.count)
        guard Self.isValidField(name, text) else { return .failure(.badArgument) }
        return .success((name, text))
    }

    /// A field name (a token, or one of the pseudo-headers) and a value loom can write.
    static func isValidField(_ name: String, _ value: String) -> Bool {
        let bare = name.hasPrefix(":") ? String(name.dropFirst()) : name
        return HTTPFieldSyntax.isValidName(bare) && HTTPFieldSyntax.isValidValue(value)
    }

    func getHeaderMapSize(_ a: HostArguments) throws -> ProxyStatus {
        switch map(a.u32(0)) {
        case .failure(let status): return status
        case .success(let map):
            let size = map.encodedSize
            charge(bytes: size)
            return memory.writeU32(UInt32(size), at: a.u32(1)) ? .ok : .invalidMemoryAccess
        }
    }

    func getHeaderMapPairs(_ a: HostArguments) throws -> ProxyStatus {
        switch map(a.u32(0)) {
        case .failure(let status): return status
        case .success(let map): return try hand(map.encoded, to: a.u32(1), a.u32(2))
        }
    }

    /// Replaces a whole map. Pseudo-headers the new map leaves out keep their values, so a
    /// plugin that sets only regular fields cannot lose the request line or status.
    func setHeaderMapPairs(_ a: HostArguments) throws -> ProxyStatus {
        guard let decoded = memory.withBytes(at: a.u32(1), count: a.u32(2), { HeaderMapCodec.decode($0) }) else { return .invalidMemoryAccess }
        guard let pairs = decoded else { return .badArgument }
        charge(bytes: Int(a.u32(2)))
        guard pairs.allSatisfy({ Self.isValidField($0.name, $0.value) }) else { return .badArgument }
        let pseudo = pairs.map(\.name).filter { $0.hasPrefix(":") }
        guard Set(pseudo).count == pseudo.count else { return .badArgument }
        return changeMap(a.u32(0)) { map in
            let replacement = HeaderMap(pairs.map { ($0.name, $0.value) })
            let kept = map.pairs.filter { old in old.name.hasPrefix(":") && !replacement.pairs.contains { $0.name == old.name } }
            map.pairs = kept + replacement.pairs
        }
    }

    func getHeaderMapValue(_ a: HostArguments) throws -> ProxyStatus {
        let found: HeaderMap
        switch map(a.u32(0)) {
        case .failure(let status): return status
        case .success(let map): found = map
        }
        guard let name = memory.string(at: a.u32(1), count: a.u32(2)) else { return .invalidMemoryAccess }
        guard let value = found.value(name) else { return .notFound }
        return try hand(Array(value.utf8), to: a.u32(3), a.u32(4))
    }

    func addHeaderMapValue(_ a: HostArguments) throws -> ProxyStatus {
        switch field(a, name: 1, value: 3) {
        case .failure(let status): return status
        case .success(let (name, value)):
            // A second `:path` (or other pseudo-header) would be ambiguous: replace it instead.
            if name.hasPrefix(":") { return changeMap(a.u32(0)) { $0.replace(name, value) } }
            return changeMap(a.u32(0)) { $0.add(name, value) }
        }
    }

    func replaceHeaderMapValue(_ a: HostArguments) throws -> ProxyStatus {
        switch field(a, name: 1, value: 3) {
        case .failure(let status): return status
        case .success(let (name, value)): return changeMap(a.u32(0)) { $0.replace(name, value) }
        }
    }

    func removeHeaderMapValue(_ a: HostArguments) throws -> ProxyStatus {
        guard let name = memory.string(at: a.u32(1), count: a.u32(2)) else { return .invalidMemoryAccess }
        // Removing the request line or status would leave nothing to send.
        if name.hasPrefix(":") { return .badArgument }
        return changeMap(a.u32(0)) { $0.remove(name) }
    }

    // MARK: - Stream control

    func continueStream(_ a: HostArguments) throws -> ProxyStatus {
        guard let type = ProxyStreamType(rawValue: a.u32(0)), type == .httpRequest || type == .httpResponse else { return .badArgument }
        guard let stream = currentStream else { return .notFound }
        stream.resumePaused(type)
        return .ok
    }

    func closeStream(_ a: HostArguments) throws -> ProxyStatus {
        guard let type = ProxyStreamType(rawValue: a.u32(0)), type == .httpRequest || type == .httpResponse else { return .badArgument }
        guard let stream = currentStream else { return .notFound }
        stream.closed = true
        decided(stream, resetRejection)
        return .ok
    }

    private var resetRejection: FilterRejection { PluginFilter.reset(by: plugin.name) }

    /// `stream` was closed or answered: in its own callback the phase reads that when the
    /// call returns; elsewhere it takes effect now (`PluginStream.decided`).
    private func decided(_ stream: PluginStream, _ rejection: @autoclosure () -> FilterRejection) {
        stream.decided(rejection(), running: runningStream == stream.id)
    }

    /// `proxy_send_local_response`: the plugin answers instead of the upstream. While the
    /// request is handled, or in `on_response_headers` of an upstream's response (and while
    /// it holds it): the upstream's response is then dropped. Once the response head is on
    /// its way (the response body and trailers callbacks) no other answer can follow: as in
    /// Envoy, the stream is reset. The status must be 200–599; loom computes the framing
    /// fields itself.
    func sendLocalResponse(_ a: HostArguments) throws -> ProxyStatus {
        let status = Int(a.u32(0))
        guard let details = memory.string(at: a.u32(1), count: a.u32(2)),
              let body = memory.bytes(at: a.u32(3), count: a.u32(4)),
              let decoded = memory.withBytes(at: a.u32(5), count: a.u32(6), { HeaderMapCodec.decode($0) })
        else { return .invalidMemoryAccess }
        charge(bytes: body.count + Int(a.u32(6)))
        guard (200...599).contains(status), let pairs = decoded else { return .badArgument }
        guard let stream = currentStream else { return .badArgument }
        if [.responseBody, .responseTrailers].contains(stream.phase) {
            plugin.log(.warn, "local response \(status) after the response head left: the stream is reset")
            stream.closed = true
            decided(stream, resetRejection)
            return .ok
        }
        // On loom's own answer (an error, say), which cannot be replaced.
        guard [.requestHeaders, .requestBody, .requestTrailers].contains(stream.phase) || stream.canReplaceResponse else { return .badArgument }
        var headers: [HeaderPair] = []
        for pair in pairs where !pair.name.hasPrefix(":") {
            guard Self.isValidField(pair.name, pair.value) else { return .badArgument }
            let lowered = pair.name.lowercased()
            if lowered == "content-length" || lowered == "transfer-encoding" { continue }
            headers.append(HeaderPair(name: pair.name, value: pair.value))
        }
        if !details.isEmpty { plugin.log(.debug, "local response \(status): \(details)") }
        let response = LocalResponse(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
        stream.localResponse = response
        decided(stream, FilterRejection(answer: response, code: "plugin_response"))
        return .ok
    }

    // MARK: - Shared data and metrics

    func getSharedData(_ a: HostArguments) throws -> ProxyStatus {
        guard let key = memory.string(at: a.u32(0), count: a.u32(1)) else { return .invalidMemoryAccess }
        guard let (value, cas) = plugin.shared.get(key) else { return .notFound }
        guard memory.contains(a.u32(4), 4) else { return .invalidMemoryAccess }
        let status = try hand(value, to: a.u32(2), a.u32(3))
        guard status == .ok else { return status }
        return memory.writeU32(cas, at: a.u32(4)) ? .ok : .invalidMemoryAccess
    }

    func setSharedData(_ a: HostArguments) throws -> ProxyStatus {
        guard let key = memory.string(at: a.u32(0), count: a.u32(1)), let value = memory.bytes(at: a.u32(2), count: a.u32(3)) else {
            return .invalidMemoryAccess
        }
        charge(bytes: key.utf8.count + value.count)
        guard value.count <= PluginSharedState.maxValueBytes, key.utf8.count <= PluginSharedState.maxKeyBytes else { return .badArgument }
        switch plugin.shared.set(key, value, cas: a.u32(4)) {
        case .ok: return .ok
        case .casMismatch: return .casMismatch
        case .full: return .badArgument
        }
    }

    func defineMetric(_ a: HostArguments) throws -> ProxyStatus {
        guard let type = ProxyMetricType(rawValue: a.u32(0)) else { return .badArgument }
        guard let name = memory.string(at: a.u32(1), count: a.u32(2)) else { return .invalidMemoryAccess }
        charge(bytes: name.utf8.count)
        guard !name.isEmpty, name.utf8.count <= 256, let id = plugin.shared.metrics.define(name, type: type) else { return .badArgument }
        return memory.writeU32(id, at: a.u32(3)) ? .ok : .invalidMemoryAccess
    }

    func recordMetric(_ a: HostArguments) throws -> ProxyStatus {
        plugin.shared.metrics.apply(.record(Int64(bitPattern: a.u64(1))), to: a.u32(0)) ? .ok : .badArgument
    }

    func incrementMetric(_ a: HostArguments) throws -> ProxyStatus {
        plugin.shared.metrics.apply(.increment(Int64(bitPattern: a.u64(1))), to: a.u32(0)) ? .ok : .badArgument
    }

    func getMetric(_ a: HostArguments) throws -> ProxyStatus {
        guard let value = plugin.shared.metrics.value(a.u32(0)) else { return .badArgument }
        return memory.writeU64(UInt64(bitPattern: value), at: a.u32(1)) ? .ok : .invalidMemoryAccess
    }

    // MARK: - Properties

    func getProperty(_ a: HostArguments) throws -> ProxyStatus {
        guard let raw = memory.bytes(at: a.u32(0), count: a.u32(1)) else { return .invalidMemoryAccess }
        guard let value = PluginProperties.value(of: PluginProperties.path(raw), vm: self) else { return .notFound }
        return try hand(value, to: a.u32(2), a.u32(3))
    }

    /// Stores a value for this stream (Envoy's filter state): later `proxy_get_property`
    /// calls of the same stream read it. Loom's own attributes are read-only.
    func setProperty(_ a: HostArguments) throws -> ProxyStatus {
        guard let raw = memory.bytes(at: a.u32(0), count: a.u32(1)), let value = memory.bytes(at: a.u32(2), count: a.u32(3)) else {
            return .invalidMemoryAccess
        }
        charge(bytes: raw.count + value.count)
        let path = PluginProperties.path(raw)
        guard !path.isEmpty, !PluginProperties.isBuiltIn(path) else { return .badArgument }
        guard let stream = currentStream else { return .notFound }
        guard stream.properties.count < 64 || stream.properties[path] != nil, value.count <= 64 * 1024 else { return .badArgument }
        stream.properties[path] = value
        return .ok
    }
}
