import LoomConfig
import LoomHTTP
import NIOCore

/// The host calls whose effect comes later, on the instance's event loop: HTTP calls
/// (`proxy_http_call` → `proxy_on_http_call_response`), timers (`on_tick`) and shared queues
/// (`on_queue_ready`). Each completion finds the instance through its `VMBox`, so one that
/// was replaced meanwhile is simply not called.
extension PluginVM {
    // MARK: - HTTP calls

    /// Most time a call may take; longer timeouts are cut to it.
    static let maxCallTimeout = Duration.seconds(300)
    /// Calls one instance may have under way (each is a connection).
    static let maxPendingCalls = 256

    func httpCall(_ a: HostArguments) throws -> ProxyStatus {
        guard let upstream = memory.string(at: a.u32(0), count: a.u32(1)),
              let headers = memory.withBytes(at: a.u32(2), count: a.u32(3), { HeaderMapCodec.decode($0) }),
              let body = memory.bytes(at: a.u32(4), count: a.u32(5)),
              let trailers = memory.withBytes(at: a.u32(6), count: a.u32(7), { HeaderMapCodec.decode($0) }),
              memory.contains(a.u32(9), 4)
        else { return .invalidMemoryAccess }
        charge(bytes: body.count + Int(a.u32(3)) + Int(a.u32(7)))
        guard let headers, let trailers, let loop = environment.eventLoop, let caller = environment.caller,
              pendingCalls.count < Self.maxPendingCalls
        else { return .badArgument }
        guard (headers + trailers).allSatisfy({ Self.isValidField($0.name, $0.value) }) else { return .badArgument }
        func pseudo(_ name: String) -> String? { headers.first { $0.name == name }?.value }
        // The ABI requires these three; a call without them is refused, as in Envoy.
        guard let method = pseudo(":method"), let path = pseudo(":path"), let authority = pseudo(":authority"),
              HTTPFieldSyntax.isValidName(method), HTTPFieldSyntax.isValidOriginTarget(path)
        else { return .badArgument }
        let request = PluginHTTPRequest(
            method: method, path: path, authority: authority,
            headers: headers.filter { !$0.name.hasPrefix(":") }.map { HeaderPair(name: $0.name, value: $0.value) },
            body: body, trailers: trailers.map { HeaderPair(name: $0.name, value: $0.value) })
        let timeout = min(Duration.milliseconds(max(1, Int64(a.u32(8)))), Self.maxCallTimeout)
        let id = nextCallID
        nextCallID = nextCallID == .max ? 1 : nextCallID + 1
        let box = self.box
        // Registered first: a call that fails at once (a refused connect) completes inside
        // `call`, and its callback must find the call.
        pendingCalls[id] = effectiveContext
        let started = caller.call(request, upstream: upstream, timeout: timeout, on: loop) { response in
            // Delivered after the current guest call returns, never inside it.
            loop.execute { box.vm?.callFinished(id, response) }
        }
        guard started else {
            pendingCalls[id] = nil
            return .badArgument
        }
        _ = memory.writeU32(id, at: a.u32(9))
        return .ok
    }

    /// A call's response (nil: it failed), unless the context that made it is gone.
    /// As in Envoy, the callback goes to the root context (the SDKs find the calling stream
    /// by the call id and switch to it with `proxy_set_effective_context`). A paused
    /// request whose plugin fails here fails with it.
    func callFinished(_ id: UInt32, _ response: PluginHTTPResponse?) {
        guard let context = pendingCalls.removeValue(forKey: id), broken == nil else { return }
        guard context == rootID || streams[context] != nil else { return }
        callResponse = response
        // `proxy_get_status` during the callback: a failed call reads BROKEN_CONNECTION and
        // "reset", as in Envoy; a call that got a response reads OK (Envoy leaves the code
        // of an earlier failure there). The message is cleared after the callback.
        lastStatus = response == nil ? (UInt32(ProxyStatus.brokenConnection.rawValue), "reset") : (0, "")
        defer {
            callResponse = nil
            lastStatus.message = ""
        }
        let arguments: [UInt64] = [
            UInt64(id), UInt64(response.map { $0.headers.count + 1 } ?? 0), UInt64(response?.body.count ?? 0),
            UInt64(response?.trailers.count ?? 0),
        ]
        do {
            _ = try streamCallback(.httpCallResponse, context: rootID, arguments)
        } catch {
            failAsync(.httpCallResponse, error, context: context)
        }
    }

    /// The response headers of the call being delivered, with `:status` first.
    var callResponseHeaders: HeaderMap? {
        callResponse.map { HeaderMap([(":status", String($0.status))] + $0.headers.map { ($0.name, $0.value) }) }
    }

    var callResponseTrailers: HeaderMap? {
        callResponse.map { HeaderMap($0.trailers.map { ($0.name, $0.value) }) }
    }

    /// A callback outside any request failed: logged; a paused stream it was acting for
    /// fails; the runtime starts a fresh instance (ticks and queues keep working).
    func failAsync(_ callback: PluginCallback, _ error: any Error, context: UInt32) {
        plugin.log(.error, "\(callback.name) failed: \(error)")
        if let stream = streams[context], stream.isPaused {
            stream.failure = "\(callback.name) failed: \(error)"
            stream.resumePaused()
        }
        tickTask?.cancel()
        tickTask = nil
        environment.restart?()
    }

    // MARK: - Timers

    func setTickPeriod(_ a: HostArguments) throws -> ProxyStatus {
        tickTask?.cancel()
        tickTask = nil
        let milliseconds = a.u32(0)
        // A trial start (no loop) accepts the period and never ticks; nor does a retired
        // instance (a reload replaced its plugin).
        guard milliseconds > 0, !timersStopped, let loop = environment.eventLoop else { return .ok }
        let period = TimeAmount.milliseconds(Int64(milliseconds))
        let box = self.box
        tickTask = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in box.vm?.tick() }
        return .ok
    }

    /// Ends the instance's timer for good: its runtime was retired by a reload, and only the
    /// requests that started before it still use the instance.
    func stopTimers() {
        timersStopped = true
        tickTask?.cancel()
        tickTask = nil
    }

    func tick() {
        guard broken == nil else { return }
        do {
            _ = try streamCallback(.tick, context: rootID, [])
        } catch {
            failAsync(.tick, error, context: rootID)
        }
    }

    // MARK: - Shared queues

    func registerSharedQueue(_ a: HostArguments) throws -> ProxyStatus {
        guard let name = memory.string(at: a.u32(0), count: a.u32(1)), memory.contains(a.u32(2), 4) else { return .invalidMemoryAccess }
        guard !name.isEmpty, name.utf8.count <= 1024 else { return .badArgument }
        let box = self.box
        let loop = environment.eventLoop
        // A trial start (no loop) registers the queue in its own isolated state, unnotified.
        guard let id = plugin.shared.queues.register(name, notify: { id in loop?.execute { box.vm?.queueReady(id) } }) else { return .badArgument }
        _ = memory.writeU32(id, at: a.u32(2))
        return .ok
    }

    /// Queues are the plugin's own (the `vm_id` is not used: loom scopes them by plugin).
    func resolveSharedQueue(_ a: HostArguments) throws -> ProxyStatus {
        guard memory.contains(a.u32(0), a.u32(1)), let name = memory.string(at: a.u32(2), count: a.u32(3)), memory.contains(a.u32(4), 4) else {
            return .invalidMemoryAccess
        }
        guard let id = plugin.shared.queues.resolve(name) else { return .notFound }
        _ = memory.writeU32(id, at: a.u32(4))
        return .ok
    }

    func enqueueSharedQueue(_ a: HostArguments) throws -> ProxyStatus {
        guard let item = memory.bytes(at: a.u32(1), count: a.u32(2)) else { return .invalidMemoryAccess }
        charge(bytes: item.count)
        switch plugin.shared.queues.enqueue(a.u32(0), item) {
        case .ok: return .ok
        case .notFound: return .notFound
        case .full: return .internalFailure
        }
    }

    func dequeueSharedQueue(_ a: HostArguments) throws -> ProxyStatus {
        guard memory.contains(a.u32(1), 4), memory.contains(a.u32(2), 4) else { return .invalidMemoryAccess }
        switch plugin.shared.queues.dequeue(a.u32(0)) {
        case .notFound: return .notFound
        case .empty: return .empty
        case .item(let item): return try hand(item, to: a.u32(1), a.u32(2))
        }
    }

    func queueReady(_ id: UInt32) {
        guard broken == nil else { return }
        do {
            _ = try streamCallback(.queueReady, context: rootID, [UInt64(id)])
        } catch {
            failAsync(.queueReady, error, context: rootID)
        }
    }
}
