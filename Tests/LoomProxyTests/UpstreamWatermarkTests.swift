import LoomConfig
import LoomHTTP
import LoomIO
import NIOCore
import NIOPosix
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// A real upstream connection holds a 64 KiB request body and its head unwritten and
    /// still takes more, so such a body does not pause the client's reading on every request
    /// (which cost two `epoll_ctl` per request on NIO's channels); twice that is past the watermark, so a
    /// slow upstream still pushes back.
    @Suite(.serialized) struct UpstreamWatermarkTests {
        @Test func aBodyOf64KiBAndItsHeadLeaveTheUpstreamWritable() async throws {
            try await withBackend { port in
                // Loom's own loop: upstream connections are LoomIO channels.
                let group = try IOEventLoopGroup(numberOfThreads: 1)
                let loop = group.next()
                let writable = try await loop.flatSubmit {
                    let pool = UpstreamPool(
                        endpoint: .tcp(host: "127.0.0.1", port: port), settings: PoolSettings(maxIdle: 1), eventLoop: loop)
                    return pool.connect(timeout: .seconds(5), limits: HTTP1Limits()).map { connection in
                        // Written, not flushed: as a read batch leaves them until its flush.
                        connection.write(ByteBuffer(repeating: UInt8(ascii: "a"), count: 64 * 1024 + 1024))
                        let afterOneBody = connection.isWritable
                        connection.write(ByteBuffer(repeating: UInt8(ascii: "a"), count: 64 * 1024))
                        let afterTwo = connection.isWritable
                        connection.close()
                        return [afterOneBody, afterTwo]
                    }
                }.get()
                try await group.shutdownGracefully()
                #expect(writable == [true, false])
            }
        }
    }
}
