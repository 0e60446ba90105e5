// swift-tools-version:6.1
import PackageDescription

/// Loom: one binary, a reverse proxy and API gateway.
///
/// Pure logic lives in the middle targets (config, routing, HTTP/1 wire format) and is tested
/// without sockets; I/O lives at the leaves (LoomProxy on SwiftNIO, the `loom` CLI).
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
/// The data-path targets skip the runtime exclusivity checks in release builds: they were
/// ~6% of the proxy's CPU per request (bench/run, docs/BENCHMARKS.md). Debug builds, and so
/// the test suite, keep them: they have caught real bugs here.
let dataPath: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "loom",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "loom", targets: ["loom"]),
        // For bench/nio-forwarder's forwarder on LoomIO.
        .library(name: "LoomIO", targets: ["LoomIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Only its bcrypt (HummingbirdBcrypt, a C implementation): none of Hummingbird is built.
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/swiftwasm/WasmKit.git", from: "0.4.2"),
        // Supervised processes (issue 11): spawning, pipes and reaping.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Only the malloc interposer trait: its default companion, RuntimeInterposer, pulls in
        // swift-runtime-interposer on Linux with Swift 6.3, which this build does not need.
        // No jemalloc either way: on Swift 6.3 the interposer counts allocations itself.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // SwiftNIO channels on loom's own epoll loop (docs/BENCHMARKS.md: NIO's socket channels
        // cost ~3 µs per proxied request); every NIO handler runs on them unchanged.
        .target(name: "CLoomIO"),
        .target(
            name: "LoomIO",
            dependencies: [
                "CLoomIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: dataPath
        ),
        .target(
            name: "LoomConfig",
            dependencies: [
                "LoomSupervision",
                .product(name: "Yams", package: "Yams"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LoomRouting",
            dependencies: ["LoomConfig", "LoomHTTP"],
            swiftSettings: strict
        ),
        // Upstream resilience as pure state machines (breakers, ejection, health verdicts, retry
        // rules) and the lock-free shared state that applies them.
        .target(name: "LoomUpstream", swiftSettings: strict),
        // Supervision of the processes loom fronts (issue 11) as pure state machines: one
        // child's lifecycle (restarts, backoff, crash loops) and the start/stop order.
        .target(name: "LoomSupervision", swiftSettings: strict),
        // The filter contract (Proxy-Wasm's phases and decisions), the chain, and the
        // built-in filters.
        .target(
            name: "LoomFilters",
            dependencies: [
                "LoomConfig", "LoomHTTP", "LoomRouting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ],
            swiftSettings: strict
        ),
        // The Proxy-Wasm ABI host: plugins as one more filter type. Only WasmKitEngine.swift
        // names the engine.
        .target(
            name: "LoomWasm",
            dependencies: [
                "LoomConfig", "LoomHTTP", "LoomFilters",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LoomHTTP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: dataPath
        ),
        .target(
            name: "LoomProxy",
            dependencies: [
                "LoomConfig", "LoomRouting", "LoomHTTP", "LoomUpstream", "LoomFilters", "LoomWasm", "LoomIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // Only for plugins' HTTP calls (`UpstreamCaller`) and the admin API; the data
                // path parses HTTP itself.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // SHA-1 for the WebSocket handshake's Sec-WebSocket-Accept check.
                .product(name: "Crypto", package: "swift-crypto"),
                "LoomSupervision",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: dataPath
        ),
        .executableTarget(
            name: "loom",
            dependencies: [
                "LoomConfig", "LoomProxy", "LoomWasm",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Helpers more than one test target needs (a seeded generator).
        .target(name: "LoomTestSupport", path: "Tests/LoomTestSupport", swiftSettings: strict),
        .testTarget(
            name: "LoomFiltersTests",
            dependencies: [
                "LoomFilters", "LoomConfig", "LoomHTTP", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "LoomIOTests",
            dependencies: [
                "LoomIO", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "LoomWasmTests", dependencies: ["LoomWasm", "LoomConfig"], swiftSettings: strict),
        .testTarget(name: "LoomUpstreamTests", dependencies: ["LoomUpstream", "LoomTestSupport"], swiftSettings: strict),
        .testTarget(name: "LoomSupervisionTests", dependencies: ["LoomSupervision"], swiftSettings: strict),
        .testTarget(name: "LoomConfigTests", dependencies: ["LoomConfig", "LoomTestSupport"], swiftSettings: strict),
        .testTarget(name: "LoomRoutingTests", dependencies: ["LoomRouting", "LoomHTTP", "LoomTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "LoomHTTPTests",
            dependencies: ["LoomHTTP", "LoomTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LoomProxyTests",
            dependencies: [
                "LoomProxy", "LoomConfig", "LoomHTTP", "LoomFilters", "LoomWasm", "LoomIO", "loom", "LoomTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "WAT", package: "WasmKit"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        // Micro-benchmarks of the data path's hot pieces (docs/BENCHMARKS.md): run with
        // `swift package benchmark`. They reach internals through `package` access, which only
        // works inside this package, hence a target here rather than a separate package.
        .executableTarget(
            name: "LoomBenchmarks",
            dependencies: [
                "LoomConfig", "LoomRouting", "LoomHTTP", "LoomProxy", "LoomBenchmarkSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/LoomBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // `ProxiedExchange`, shared by the benchmarks and by `ExchangeCount`, which
        // `bench/instructions` runs under callgrind. `ExchangeCount` lives in bench/: the
        // benchmark plugin takes every executable under Benchmarks/ for a benchmark.
        .target(
            name: "LoomBenchmarkSupport",
            dependencies: [
                "LoomConfig", "LoomProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/LoomBenchmarkSupport",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ExchangeCount",
            dependencies: ["LoomBenchmarkSupport"],
            path: "bench/ExchangeCount",
            swiftSettings: strict
        ),
    ]
)
