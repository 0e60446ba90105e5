/// Every function the host offers a module, with its signature: the one table both the
/// load-time check (`PluginInspection`: an import not here is refused by name) and
/// instantiation (`functions(for:vm:)`) read, so they cannot disagree.
enum HostImports {
    typealias Body = @Sendable (PluginVM, HostArguments) throws -> UInt64

    struct Entry: Sendable {
        let signature: WasmSignature
        let body: Body
    }

    private static func i32(_ count: Int) -> WasmSignature { WasmSignature(Array(repeating: .i32, count: count), [.i32]) }

    private static func proxy(_ count: Int, _ body: @escaping @Sendable (PluginVM, HostArguments) throws -> ProxyStatus) -> Entry {
        Entry(signature: i32(count)) { vm, arguments in try body(vm, arguments).rawValue }
    }

    private static func wasi(_ signature: WasmSignature, _ body: @escaping @Sendable (PluginVM, HostArguments) throws -> PluginVM.Errno) -> Entry {
        Entry(signature: signature) { vm, arguments in try body(vm, arguments).rawValue }
    }

    static let env: [String: Entry] = [
        "proxy_log": proxy(3) { try $0.log($1) },
        "proxy_get_log_level": proxy(1) { try $0.getLogLevel($1) },
        "proxy_get_current_time_nanoseconds": proxy(1) { try $0.getCurrentTime($1) },
        "proxy_get_status": proxy(3) { try $0.getStatus($1) },
        "proxy_set_effective_context": proxy(1) { try $0.setEffectiveContext($1) },
        "proxy_done": proxy(0) { try $0.done($1) },
        "proxy_call_foreign_function": proxy(6) { try $0.callForeignFunction($1) },
        "proxy_get_buffer_bytes": proxy(5) { try $0.getBufferBytes($1) },
        "proxy_set_buffer_bytes": proxy(5) { try $0.setBufferBytes($1) },
        "proxy_get_buffer_status": proxy(3) { try $0.getBufferStatus($1) },
        "proxy_get_header_map_size": proxy(2) { try $0.getHeaderMapSize($1) },
        "proxy_get_header_map_pairs": proxy(3) { try $0.getHeaderMapPairs($1) },
        "proxy_set_header_map_pairs": proxy(3) { try $0.setHeaderMapPairs($1) },
        "proxy_get_header_map_value": proxy(5) { try $0.getHeaderMapValue($1) },
        "proxy_add_header_map_value": proxy(5) { try $0.addHeaderMapValue($1) },
        "proxy_replace_header_map_value": proxy(5) { try $0.replaceHeaderMapValue($1) },
        "proxy_remove_header_map_value": proxy(3) { try $0.removeHeaderMapValue($1) },
        "proxy_continue_stream": proxy(1) { try $0.continueStream($1) },
        "proxy_close_stream": proxy(1) { try $0.closeStream($1) },
        "proxy_send_local_response": proxy(8) { try $0.sendLocalResponse($1) },
        "proxy_get_shared_data": proxy(5) { try $0.getSharedData($1) },
        "proxy_set_shared_data": proxy(5) { try $0.setSharedData($1) },
        "proxy_define_metric": proxy(4) { try $0.defineMetric($1) },
        "proxy_record_metric": Entry(signature: WasmSignature([.i32, .i64], [.i32])) { vm, a in try vm.recordMetric(a).rawValue },
        "proxy_increment_metric": Entry(signature: WasmSignature([.i32, .i64], [.i32])) { vm, a in try vm.incrementMetric(a).rawValue },
        "proxy_get_metric": proxy(2) { try $0.getMetric($1) },
        "proxy_get_property": proxy(4) { try $0.getProperty($1) },
        "proxy_set_property": proxy(4) { try $0.setProperty($1) },
        "proxy_http_call": proxy(10) { try $0.httpCall($1) },
        "proxy_set_tick_period_milliseconds": proxy(1) { try $0.setTickPeriod($1) },
        "proxy_register_shared_queue": proxy(3) { try $0.registerSharedQueue($1) },
        "proxy_resolve_shared_queue": proxy(5) { try $0.resolveSharedQueue($1) },
        "proxy_enqueue_shared_queue": proxy(3) { try $0.enqueueSharedQueue($1) },
        "proxy_dequeue_shared_queue": proxy(3) { try $0.dequeueSharedQueue($1) },
        "proxy_grpc_call": proxy(12) { try $0.grpcCall($1) },
        "proxy_grpc_stream": proxy(9) { try $0.grpcStream($1) },
        "proxy_grpc_send": proxy(4) { try $0.grpcSend($1) },
        "proxy_grpc_cancel": proxy(1) { try $0.grpcCancel($1) },
        "proxy_grpc_close": proxy(1) { try $0.grpcClose($1) },
    ]

    static let wasiFunctions: [String: Entry] = {
        var table: [String: Entry] = [:]
        // Everything unlisted below: present so that modules link, and ENOTSUP when called.
        for (name, signature) in WASISignatures.all {
            table[name] = Entry(signature: signature) { _, _ in PluginVM.Errno.notsup.rawValue }
        }
        let implemented: [String: @Sendable (PluginVM, HostArguments) throws -> PluginVM.Errno] = [
            "fd_write": { try $0.fdWrite($1) }, "fd_fdstat_get": { try $0.fdFdstatGet($1) }, "fd_prestat_get": { try $0.fdPrestatGet($1) },
            "clock_time_get": { try $0.clockTimeGet($1) }, "clock_res_get": { try $0.clockResGet($1) }, "random_get": { try $0.randomGet($1) },
            "environ_sizes_get": { try $0.environSizesGet($1) }, "environ_get": { try $0.environGet($1) },
            "args_sizes_get": { try $0.argsSizesGet($1) }, "args_get": { try $0.argsGet($1) },
            "proc_exit": { try $0.procExit($1) }, "sched_yield": { try $0.schedYield($1) }, "poll_oneoff": { try $0.pollOneoff($1) },
        ]
        for (name, body) in implemented {
            guard let signature = WASISignatures.all.first(where: { $0.name == name })?.signature else { continue }
            table[name] = wasi(signature, body)
        }
        return table
    }()

    static let wasiModules: Set<String> = ["wasi_snapshot_preview1", "wasi_unstable"]

    static func entry(module: String, name: String) -> Entry? {
        if module == "env" { return env[name] }
        if wasiModules.contains(module) { return wasiFunctions[name] }
        return nil
    }

    static func signature(module: String, name: String) -> WasmSignature? {
        entry(module: module, name: name)?.signature
    }

    /// The host functions `imports` name, bound to the VM in `box` (unset until the VM
    /// exists; no host function runs before instantiation ends).
    static func functions(for imports: [WasmImport], vm box: VMBox) -> [HostFunction] {
        imports.compactMap { entry in
            guard case .function = entry.kind, let host = self.entry(module: entry.module, name: entry.name) else { return nil }
            let body = host.body
            return HostFunction(module: entry.module, name: entry.name, signature: host.signature) { arguments in
                guard let vm = box.vm else { throw WasmError.trap("host function called while the instance is being torn down") }
                // Every host call costs fuel, so a loop of cheap calls is bounded in time too.
                vm.charge()
                return try body(vm, arguments)
            }
        }
    }
}

/// WASI preview1's functions and their types (from the witx definitions).
enum WASISignatures {
    private static func s(_ parameters: [WasmValueType], _ results: [WasmValueType] = [.i32]) -> WasmSignature {
        WasmSignature(parameters, results)
    }

    static let all: [(name: String, signature: WasmSignature)] = [
        ("args_get", s([.i32, .i32])), ("args_sizes_get", s([.i32, .i32])),
        ("clock_res_get", s([.i32, .i32])), ("clock_time_get", s([.i32, .i64, .i32])),
        ("environ_get", s([.i32, .i32])), ("environ_sizes_get", s([.i32, .i32])),
        ("fd_advise", s([.i32, .i64, .i64, .i32])), ("fd_allocate", s([.i32, .i64, .i64])),
        ("fd_close", s([.i32])), ("fd_datasync", s([.i32])),
        ("fd_fdstat_get", s([.i32, .i32])), ("fd_fdstat_set_flags", s([.i32, .i32])),
        ("fd_fdstat_set_rights", s([.i32, .i64, .i64])), ("fd_filestat_get", s([.i32, .i32])),
        ("fd_filestat_set_size", s([.i32, .i64])), ("fd_filestat_set_times", s([.i32, .i64, .i64, .i32])),
        ("fd_pread", s([.i32, .i32, .i32, .i64, .i32])), ("fd_prestat_dir_name", s([.i32, .i32, .i32])),
        ("fd_prestat_get", s([.i32, .i32])), ("fd_pwrite", s([.i32, .i32, .i32, .i64, .i32])),
        ("fd_read", s([.i32, .i32, .i32, .i32])), ("fd_readdir", s([.i32, .i32, .i32, .i64, .i32])),
        ("fd_renumber", s([.i32, .i32])), ("fd_seek", s([.i32, .i64, .i32, .i32])),
        ("fd_sync", s([.i32])), ("fd_tell", s([.i32, .i32])), ("fd_write", s([.i32, .i32, .i32, .i32])),
        ("path_create_directory", s([.i32, .i32, .i32])), ("path_filestat_get", s([.i32, .i32, .i32, .i32, .i32])),
        ("path_filestat_set_times", s([.i32, .i32, .i32, .i32, .i64, .i64, .i32])),
        ("path_link", s([.i32, .i32, .i32, .i32, .i32, .i32, .i32])),
        ("path_open", s([.i32, .i32, .i32, .i32, .i32, .i64, .i64, .i32, .i32])),
        ("path_readlink", s([.i32, .i32, .i32, .i32, .i32, .i32])), ("path_remove_directory", s([.i32, .i32, .i32])),
        ("path_rename", s([.i32, .i32, .i32, .i32, .i32, .i32])), ("path_symlink", s([.i32, .i32, .i32, .i32, .i32])),
        ("path_unlink_file", s([.i32, .i32, .i32])), ("poll_oneoff", s([.i32, .i32, .i32, .i32])),
        ("proc_exit", s([.i32], [])), ("proc_raise", s([.i32])), ("random_get", s([.i32, .i32])),
        ("sched_yield", s([])), ("sock_accept", s([.i32, .i32, .i32])),
        ("sock_recv", s([.i32, .i32, .i32, .i32, .i32, .i32])), ("sock_send", s([.i32, .i32, .i32, .i32, .i32])),
        ("sock_shutdown", s([.i32, .i32])),
    ]
}
