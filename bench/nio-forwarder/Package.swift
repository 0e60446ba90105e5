// swift-tools-version:6.1
import PackageDescription

/// A plain SwiftNIO byte forwarder for bench/run (`--nio-forwarder`): the event loop set-up
/// loom has, with no HTTP at all. What it costs per request is what a SwiftNIO proxy pays
/// before parsing a byte: the rest of loom's cost is loom's own. See docs/BENCHMARKS.md.
let package = Package(
    name: "nio-forwarder",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // LoomIO, loom's own channels, for loomio-forwarder.
        .package(name: "loom", path: "../.."),
    ],
    targets: [
        .target(name: "Forwarding", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "nio-forwarder",
            dependencies: ["Forwarding", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "loomio-forwarder",
            dependencies: ["Forwarding", .product(name: "LoomIO", package: "loom"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(name: "CEpoll"),
        .executableTarget(name: "epoll-forwarder", dependencies: ["CEpoll"], swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
