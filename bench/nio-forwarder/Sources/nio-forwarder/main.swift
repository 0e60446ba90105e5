import Forwarding
import NIOCore
import NIOPosix

let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let backendPort = Int(arguments[2]) else {
    print("usage: nio-forwarder LISTEN_PORT BACKEND_PORT   (both on 127.0.0.1)")
    exit(2)
}

// One event loop, TCP_NODELAY both ways, and loom's listener settings (a 4096 backlog, up to
// 256 accepts per wake-up), as loom runs with `worker_threads: 1`.
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.maxMessagesPerRead, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: backendPort)
            .flatMapThrowing { upstream in
                // Both channels are on the client's loop: wire the pair there.
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
