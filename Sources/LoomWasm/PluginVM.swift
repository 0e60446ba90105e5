import LoomFilters
import NIOCore
import Synchronization

/// One instance of a plugin's module, with the Proxy-Wasm host state around it: the root
/// context, the live stream contexts, and the effective context host calls act on.
///
/// Confined to one event loop (a WebAssembly store is single-threaded): created for it,
/// called only on it. A trap, a call over its budget, or any other failure of a guest call
/// marks it `broken`; the runtime then replaces it with a fresh instance, so one bad request
/// never poisons the next.
final class PluginVM {
    let plugin: PluginContext
    let instance: any WasmInstance
    private let allocatorFunction: WasmFunctionRef
    /// The callbacks the module exports, resolved once, by `PluginCallback.rawValue`.
    private var callbacks: [WasmFunctionRef?] = Array(repeating: nil, count: PluginCallback.allCases.count)

    /// The root context's id (host-allocated, as every context id).
    let rootID: UInt32 = 1
    private var nextContextID: UInt32 = 2
    /// The context host calls act on: the one of the callback running, or what
    /// `proxy_set_effective_context` chose.
    var effectiveContext: UInt32 = 1
    /// The stream whose own callback is running (nil: a root context's, or none): its phase
    /// reads what the plugin decided when the call returns.
    private(set) var runningStream: UInt32?
    var streams: [UInt32: PluginStream] = [:]
    /// Set by a failed guest call: the runtime discards this instance.
    private(set) var broken: String?
    /// The status `proxy_get_status` reports (of the last HTTP call, say).
    var lastStatus: (code: UInt32, message: String) = (0, "")
    let environment: PluginVMEnvironment
    /// How the host's asynchronous work (timers, queues, call completions) reaches this
    /// instance without keeping it alive.
    let box: VMBox
    /// The timer `proxy_set_tick_period_milliseconds` started.
    var tickTask: RepeatedTask?
    /// Set by `stopTimers`: no tick period takes effect any more.
    var timersStopped = false
    /// HTTP calls under way: call id → the context that made it.
    var pendingCalls: [UInt32: UInt32] = [:]
    var nextCallID: UInt32 = 1
    /// The response `proxy_on_http_call_response` is reading (maps 6 and 7, buffer 4).
    var callResponse: PluginHTTPResponse?
    /// gRPC calls and streams under way, by token (`PluginVM+GRPC`).
    var grpcCalls: [UInt32: GRPCCall] = [:]
    var nextGRPCToken: UInt32 = 0
    /// What the gRPC callback running reads.
    var grpcDelivery: GRPCDelivery?
    /// Where the root context stands: running, or ending once its plugin was retired.
    var root = RootState.running
    /// Set by `retire`: the root context ends once no stream is left.
    private var retiring = false
    /// A retired instance keeps itself alive while its root context finishes its work
    /// (`on_done` answered false): until `proxy_done`, or `rootDoneTimeout`.
    private var lingering: PluginVM?

    enum RootState: Equatable {
        case running
        /// `on_done` answered false: waiting for the plugin's `proxy_done`.
        case waitingForDone
        /// `proxy_done` came: `on_delete` runs once the call that made it returns.
        case deleting
        /// `on_delete` ran (or the wait timed out): nothing more is called.
        case deleted
    }

    /// How long a retired root context may take to call `proxy_done`.
    static let rootDoneTimeout = TimeAmount.seconds(30)

    /// Instantiates and starts the module: WASI start (`_initialize` then `main`, or
    /// `_start`), then the root context (`on_context_create`, `on_vm_start`,
    /// `on_configure`). Throws `startFailed` or `refused` for the plugin's log.
    init(plugin: PluginContext, environment: PluginVMEnvironment = .detached) throws(PluginLoadError) {
        self.plugin = plugin
        self.environment = environment
        let module = plugin.module
        let box = VMBox()
        self.box = box
        do {
            instance = try module.compiled.instantiate(host: HostImports.functions(for: module.compiled.imports, vm: box), limits: plugin.limits)
        } catch {
            throw .startFailed("\(error)")
        }
        guard let allocator = instance.function(module.allocator) else { throw .startFailed("no \(module.allocator) export") }
        allocatorFunction = allocator
        box.vm = self
        for callback in PluginCallback.allCases where module.exports(callback.name) {
            callbacks[callback.rawValue] = instance.function(callback.name)
        }
        do {
            switch module.start {
            case .reactor(let main):
                try callRaw("_initialize", [])
                if main, let function = instance.function("main") {
                    _ = try invoke(function, Array(repeating: 0, count: function.parameterCount))
                }
            case .command:
                try callRaw("_start", [])
            case .none:
                break
            }
            _ = try callback(.contextCreate, [UInt64(rootID), 0])
            if let started = try callback(.vmStart, [UInt64(rootID), UInt64(plugin.vmConfiguration.count)]), started == 0 {
                throw PluginLoadError.refused("proxy_on_vm_start returned false")
            }
            if let configured = try callback(.configure, [UInt64(rootID), UInt64(plugin.configuration.count)]), configured == 0 {
                throw PluginLoadError.refused("proxy_on_configure returned false: the plugin refused its configuration")
            }
        } catch let error as PluginLoadError {
            throw error
        } catch {
            throw .startFailed("\(error)")
        }
    }

    deinit {
        tickTask?.cancel()
        // Streams have no deadline: an instance that goes must not leave them open.
        cancelGRPCCalls(of: nil)
    }

    func exports(_ callback: PluginCallback) -> Bool { callbacks[callback.rawValue] != nil }

    // MARK: - Calling the guest

    /// Calls `callback` (nil when the module does not export it), with the plugin's budget.
    /// A failure marks the instance broken and is rethrown.
    @discardableResult
    func callback(_ callback: PluginCallback, _ arguments: [UInt64]) throws(WasmError) -> UInt64? {
        guard let function = callbacks[callback.rawValue] else { return nil }
        return try invoke(function, arguments)
    }

    private func callRaw(_ name: String, _ arguments: [UInt64]) throws(WasmError) {
        guard let function = instance.function(name) else { return }
        _ = try invoke(function, arguments)
    }

    private func invoke(_ function: WasmFunctionRef, _ arguments: [UInt64]) throws(WasmError) -> UInt64? {
        if let broken { throw .trap("instance unusable after an earlier failure: \(broken)") }
        instance.setFuel(plugin.fuel)
        let started = ContinuousClock.now
        defer {
            let (seconds, attoseconds) = (ContinuousClock.now - started).components
            plugin.shared.busyNanoseconds.add(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000), ordering: .relaxed)
            plugin.shared.calls.add(1, ordering: .relaxed)
        }
        do {
            return try instance.call(function, arguments)
        } catch {
            broken = "\(error)"
            plugin.shared.failures.add(1, ordering: .relaxed)
            failPaused("\(error)")
            throw error
        }
    }

    /// The instance failed: every stream still waiting for it (a paused request, a held
    /// response or body end) fails with it, rather than wait for a callback that will never
    /// come. Their resumes run later, on the loop, through the filters' resumers.
    private func failPaused(_ reason: String) {
        for stream in streams.values where stream.isPaused {
            stream.failure = "the instance failed: \(reason)"
            stream.resumePaused()
        }
    }

    /// Calls a stream callback with `context` as the effective context.
    func streamCallback(_ callback: PluginCallback, context: UInt32, _ arguments: [UInt64]) throws(WasmError) -> UInt64? {
        guard exports(callback) else { return nil }
        let (saved, savedRunning) = (effectiveContext, runningStream)
        (effectiveContext, runningStream) = (context, context)
        defer { (effectiveContext, runningStream) = (saved, savedRunning) }
        return try self.callback(callback, [UInt64(context)] + arguments)
    }

    /// `size` bytes of guest memory from the guest's allocator (nil: it returned 0, or
    /// memory that is not there).
    func allocate(_ size: Int) throws(WasmError) -> UInt32? {
        guard size <= UInt32.max else { return nil }
        guard let pointer = try instance.call(allocatorFunction, [UInt64(size)]).map({ UInt32(truncatingIfNeeded: $0) }),
              pointer != 0, instance.memory.contains(pointer, UInt32(size))
        else { return nil }
        return pointer
    }

    // MARK: - Stream contexts

    /// A new stream context, announced to the guest (`on_context_create(id, root)`).
    func createStream() throws(WasmError) -> PluginStream {
        let id = nextContextID
        nextContextID = nextContextID == UInt32.max ? 2 : nextContextID + 1
        let stream = PluginStream(id: id)
        streams[id] = stream
        _ = try callback(.contextCreate, [UInt64(id), UInt64(rootID)])
        return stream
    }

    /// The end of a stream: `on_done`, `on_log` and `on_delete`, then its state is gone.
    /// As in Envoy, what a stream's `on_done` answers does not delay the rest (`proxy_done`
    /// is for root contexts). A pause or hold still waiting is dropped with it.
    func finish(_ stream: PluginStream) {
        stream.resumeRequest = nil
        stream.resumeResponse = nil
        guard streams[stream.id] != nil else { return }
        // Nobody is left to hear of the gRPC calls the request made (those its last
        // callbacks open included).
        defer { cancelGRPCCalls(of: stream.id) }
        if broken == nil {
            do {
                _ = try streamCallback(.done, context: stream.id, [])
                stream.phase = .log
                _ = try streamCallback(.log, context: stream.id, [])
                _ = try streamCallback(.delete, context: stream.id, [])
            } catch {
                plugin.log(.error, "on_done/on_log/on_delete failed: \(error)")
            }
        }
        streams[stream.id] = nil
        if retiring && streams.isEmpty { endRoot() }
    }

    // MARK: - The root context's end

    /// The plugin was retired (a reload replaced or removed it): no more ticks, and the root
    /// context ends (`on_done`, then `on_delete`) once the streams still under way finish.
    func retire() {
        retireAfterStreams()
        if streams.isEmpty { endRoot() }
    }

    /// `retire` for an instance started after its plugin was retired, for a request about to
    /// open its stream: the root context ends after that stream.
    func retireAfterStreams() {
        stopTimers()
        retiring = true
    }

    /// `on_done` for the root context: true (or no export) deletes it now; false leaves it
    /// running until the plugin calls `proxy_done` (after an HTTP call it was waiting for,
    /// say), as in Envoy, or `rootDoneTimeout` passes.
    private func endRoot() {
        guard root == .running else { return }
        guard broken == nil else {
            root = .deleted
            return
        }
        do {
            if try streamCallback(.done, context: rootID, []) == 0 {
                root = .waitingForDone
                lingering = self
                let box = self.box
                environment.eventLoop?.scheduleTask(in: Self.rootDoneTimeout) {
                    guard let vm = box.vm, vm.root == .waitingForDone else { return }
                    vm.plugin.log(.warn, "the retired root context did not call proxy_done within \(Self.rootDoneTimeout): deleted")
                    vm.deleteRoot()
                }
                return
            }
        } catch {
            plugin.log(.error, "proxy_on_done of the root context failed: \(error)")
        }
        deleteRoot()
    }

    /// `on_delete` for the root context; the instance is then free to go.
    func deleteRoot() {
        guard root != .deleted else { return }
        root = .deleted
        // The root context's calls have nobody left to report to.
        defer { cancelGRPCCalls(of: nil) }
        defer { lingering = nil }
        guard broken == nil else { return }
        do {
            _ = try streamCallback(.delete, context: rootID, [])
        } catch {
            plugin.log(.error, "proxy_on_delete of the root context failed: \(error)")
        }
    }

    /// The stream host calls act on now, if the effective context is one.
    var currentStream: PluginStream? { streams[effectiveContext] }
}

/// Lets host functions and scheduled work reach their VM without keeping it alive or
/// making a cycle (instance → host function → VM → instance). Read only on the VM's loop,
/// hence unchecked `Sendable` (closures scheduled on that loop carry it).
final class VMBox: @unchecked Sendable {
    weak var vm: PluginVM?
}

/// The callbacks a module may export (ABI v0.2.1); the raw value is where a VM keeps the
/// resolved function.
enum PluginCallback: Int, CaseIterable {
    case contextCreate, vmStart, configure, tick, queueReady
    case requestHeaders, requestBody, requestTrailers, responseHeaders, responseBody, responseTrailers
    case done, log, delete, httpCallResponse, foreignFunction
    case grpcReceiveInitialMetadata, grpcReceive, grpcReceiveTrailingMetadata, grpcClose

    /// The export's name.
    var name: String {
        switch self {
        case .contextCreate: "proxy_on_context_create"
        case .vmStart: "proxy_on_vm_start"
        case .configure: "proxy_on_configure"
        case .tick: "proxy_on_tick"
        case .queueReady: "proxy_on_queue_ready"
        case .requestHeaders: "proxy_on_request_headers"
        case .requestBody: "proxy_on_request_body"
        case .requestTrailers: "proxy_on_request_trailers"
        case .responseHeaders: "proxy_on_response_headers"
        case .responseBody: "proxy_on_response_body"
        case .responseTrailers: "proxy_on_response_trailers"
        case .done: "proxy_on_done"
        case .log: "proxy_on_log"
        case .delete: "proxy_on_delete"
        case .httpCallResponse: "proxy_on_http_call_response"
        case .foreignFunction: "proxy_on_foreign_function"
        case .grpcReceiveInitialMetadata: "proxy_on_grpc_receive_initial_metadata"
        case .grpcReceive: "proxy_on_grpc_receive"
        case .grpcReceiveTrailingMetadata: "proxy_on_grpc_receive_trailing_metadata"
        case .grpcClose: "proxy_on_grpc_close"
        }
    }
}
