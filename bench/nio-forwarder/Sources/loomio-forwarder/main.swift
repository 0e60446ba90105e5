import Forwarding
import LoomIO
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// `nio-forwarder` on loom's own channels (LoomIO): the same `Forwarder` handler in the same
/// SwiftNIO pipelines, with LoomIO's epoll loop and socket channels in place of NIOPosix's.
/// Against `nio-forwarder` it shows what LoomIO saves per request; against `epoll-forwarder`,
/// what a SwiftNIO pipeline still costs. See docs/BENCHMARKS.md.
let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let backendPort = Int(arguments[2]) else {
    print("usage: loomio-forwarder LISTEN_PORT BACKEND_PORT   (both on 127.0.0.1)")
    exit(2)
}

// The same settings as nio-forwarder: one loop, TCP_NODELAY both ways, loom's listener
// settings (a 4096 backlog, up to 256 accepts per wake-up).
let group = try IOEventLoopGroup(numberOfThreads: 1)
let server = try IOServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.maxMessagesPerRead, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        IOClientBootstrap(group: client.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: backendPort)
            .flatMapThrowing { upstream in
                let up = Forwarder()
                let down = Forwarder()
                up.peer = client
                down.peer = upstream
                try upstream.pipeline.syncOperations.addHandler(up)
                try client.pipeline.syncOperations.addHandler(down)
            }
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
