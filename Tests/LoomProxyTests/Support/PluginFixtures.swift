import Foundation
import Synchronization
import WAT

/// The test plugins, built from their sources in `Fixtures/plugins` the first time a test
/// asks for one: C with clang for `wasm32-wasi` against Debian's wasi-libc (`.ci/run`
/// installs it), as a reactor module; Rust with Debian's rustc for `wasm32-unknown-unknown`
/// (hand-written bindings, no crates); WAT (edge cases: traps, other export styles, bad
/// modules) with WasmKit's assembler. Built once per test process into a temporary directory.
enum PluginFixtures {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/plugins")

    struct BuildError: Error, CustomStringConvertible {
        let description: String
    }

    private static let built = Mutex<[String: String]>([:])
    private static let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-plugins-\(getpid())")

    /// `{plugin:NAME}` placeholders in a configuration text, each with its module's path.
    static func placeholders(in text: String) throws -> [(String, String)] {
        var found: [(String, String)] = []
        var rest = Substring(text)
        while let start = rest.range(of: "{plugin:") {
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { break }
            let name = String(rest[start.upperBound..<end])
            found.append((name, try path(name)))
            rest = rest[rest.index(after: end)...]
        }
        return found
    }

    /// The path of test plugin `name` (`Fixtures/plugins/NAME.c` or `NAME.wat`), built if
    /// needed.
    static func path(_ name: String) throws -> String {
        try built.withLock { built in
            if let path = built[name] { return path }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let output = directory.appendingPathComponent("\(name).wasm").path
            let wat = sources.appendingPathComponent("\(name).wat")
            if FileManager.default.fileExists(atPath: wat.path) {
                let bytes = try wat2wasm(String(contentsOf: wat, encoding: .utf8))
                try Data(bytes).write(to: URL(fileURLWithPath: output))
                built[name] = output
                return output
            }
            let rust = sources.appendingPathComponent("\(name).rs")
            if FileManager.default.fileExists(atPath: rust.path) {
                // Debian's rustc: the one that has the wasm32 standard library
                // (libstd-rust-dev-wasm32); a rustup toolchain on PATH may not.
                let arguments = [
                    "--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "-O", "-C", "panic=abort",
                    "-C", "strip=debuginfo", "-o", output, rust.path,
                ]
                let result = try E2E.run("/usr/bin/rustc", arguments)
                guard result.status == 0 else { throw BuildError(description: "rustc \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
                built[name] = output
                return output
            }
            let source = sources.appendingPathComponent("\(name).c").path
            let arguments = [
                "--target=wasm32-wasi", "--sysroot=/usr", "-mexec-model=reactor", "-O2", "-resource-dir", try clangResources(),
                "-o", output, source,
            ]
            let result = try E2E.run("clang", arguments)
            guard result.status == 0 else { throw BuildError(description: "clang \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
            built[name] = output
            return output
        }
    }

    /// Debian's clang resource directory for wasm32 (libclang-rt-*-dev-wasm32 puts the
    /// builtins there; the toolchain's own clang has none for wasm32).
    private static func clangResources() throws -> String {
        let base = "/usr/lib"
        let candidates = (try? FileManager.default.contentsOfDirectory(atPath: base))?.filter { $0.hasPrefix("llvm-") }.sorted().reversed() ?? []
        for llvm in candidates {
            let clang = "\(base)/\(llvm)/lib/clang"
            for version in (try? FileManager.default.contentsOfDirectory(atPath: clang)) ?? []
            where FileManager.default.fileExists(atPath: "\(clang)/\(version)/lib/wasi/libclang_rt.builtins-wasm32.a") {
                return "\(clang)/\(version)"
            }
        }
        throw BuildError(description: "no clang runtime for wasm32 under /usr/lib/llvm-*/lib/clang (apt-get install libclang-rt-14-dev-wasm32)")
    }
}
