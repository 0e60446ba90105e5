import Foundation
import Testing

/// `loom plugin inspect` and `loom validate` on plugin modules: every reason a module cannot
/// run is named, with the configuration position of the plugin's `path`.
@Suite struct PluginCLITests {
    @Test func inspectPrintsTheABIExportsAndImports() throws {
        let good = try LoomProcess.run(["plugin", "inspect", try PluginFixtures.path("headers")])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("ABI version: 0.2.1 (proxy_abi_version_0_2_1)"))
        #expect(good.stdout.contains("allocator: proxy_on_memory_allocate"))
        #expect(good.stdout.contains("  env.proxy_get_header_map_value (i32, i32, i32, i32, i32) -> (i32)"))
        #expect(good.stdout.contains("  wasi_snapshot_preview1.fd_write (i32, i32, i32, i32) -> (i32)"))
        #expect(good.stdout.contains("  proxy_on_request_headers (function)"))

        let missing = try LoomProcess.run(["plugin", "inspect", try PluginFixtures.path("missing_import")])
        #expect(missing.status != 0)
        #expect(missing.stdout.contains("  env.proxy_teleport (i32) -> (i32)  MISSING in this host"))
        #expect(missing.stdout.contains("cannot be loaded: imports env.proxy_teleport, which this host does not provide"))

        let notWasm = try temporaryFile(named: "x.wasm", "hello")
        let invalid = try LoomProcess.run(["plugin", "inspect", notWasm])
        #expect(invalid.status != 0 && invalid.stdout.contains("not a valid WebAssembly module"))
    }

    @Test func validateChecksEveryConfiguredModule() throws {
        let path = try temporaryFile(named: "gateway.yaml", """
            plugins:
              - {name: good, path: "\(try PluginFixtures.path("headers"))"}
              - {name: teleport, path: "\(try PluginFixtures.path("missing_import"))"}
              - {name: old, path: "\(try PluginFixtures.path("old_abi"))"}
              - {name: gone, path: /nonexistent/plugin.wasm}
              - {name: refusing, path: "\(try PluginFixtures.path("headers"))", config: refuse}
              - {name: badbody, path: "\(try PluginFixtures.path("bad_body"))"}
              - {name: nomemory, path: "\(try PluginFixtures.path("no_memory"))"}
              - {name: unstable, path: "\(try PluginFixtures.path("wasi_unstable"))"}
            routes:
              - {id: a, respond: {status: 204}, plugins: [good, teleport, old, gone, refusing, badbody, nomemory, unstable, unknown]}
            """)
        let result = try LoomProcess.run(["validate", path])
        #expect(result.status != 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(path):3:22 plugins[1].path: plugin \"teleport\": imports env.proxy_teleport, which this host does not provide"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(path):4:17 plugins[2].path: plugin \"old\": not a Proxy-Wasm module of a supported ABI") && $0.contains("proxy_abi_version_0_1_0") })
        #expect(lines.contains("\(path):5:18 plugins[3].path: plugin \"gone\": cannot read the module: /nonexistent/plugin.wasm does not exist"))
        #expect(lines.contains {
            $0.hasPrefix("\(path):6:22 plugins[4].path: plugin \"refusing\": proxy_on_configure returned false") && $0.contains("configuration refused: refuse")
        }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(path):7:21 plugins[5].path: plugin \"badbody\": failed to start") && $0.contains("expected i32 on the stack top") }, "a body no call reached yet: \(lines)")
        #expect(lines.contains {
            $0.hasPrefix("\(path):8:22 plugins[6].path: plugin \"nomemory\"") && $0.contains("exports no linear memory named \"memory\"")
        }, "\(lines)")
        #expect(!lines.contains { $0.contains("\"unstable\"") }, "wasi_unstable imports are provided")
        #expect(lines.contains { $0.contains("routes[0].plugins[8]: unknown plugin \"unknown\"") })
        #expect(lines.last == "\(path): 7 errors")
    }

    /// Modules that attack the host while starting: a start function that never returns is
    /// stopped by the call budget, and endless re-entry (allocator → host → allocator) traps.
    @Test func hostileStartsAreStoppedNotHung() throws {
        let path = try temporaryFile(named: "gateway.yaml", """
            plugins:
              - {name: spin, path: "\(try PluginFixtures.path("start_loop"))", timeout: 10ms}
              - {name: nest, path: "\(try PluginFixtures.path("reentrant"))", config: some-configuration}
            routes:
              - {id: a, respond: {status: 204}, plugins: [spin, nest]}
            """)
        let result = try LoomProcess.run(["validate", path], timeout: 60)
        #expect(result.status != 0)
        #expect(result.stdout.contains("plugin \"spin\": failed to start: instantiation failed"), "\(result.stdout)")
        #expect(result.stdout.contains("plugin \"nest\": failed to start") && result.stdout.contains("nested more than 4 deep"), "\(result.stdout)")
    }
}
