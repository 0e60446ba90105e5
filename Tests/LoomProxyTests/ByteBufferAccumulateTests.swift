import NIOCore
import Testing

@testable import LoomProxy

@Suite struct ByteBufferAccumulateTests {
    @Test func aDrainedCumulationIsDropped() {
        var buffer = ByteBuffer(repeating: 1, count: 100)
        buffer.moveReaderIndex(forwardBy: 100)
        buffer.shrinkAfterReads()
        #expect(buffer.capacity == 0)
    }

    /// A partial head left in one of the loop's 64 KiB receive buffers keeps only its bytes.
    @Test func aFewBytesLeftInALargeBufferGetOneOfTheirOwnSize() {
        var buffer = ByteBufferAllocator().buffer(capacity: 65536)
        buffer.writeString("GET / HTTP/1.1\r\nHo")
        buffer.shrinkAfterReads()
        #expect(String(buffer: buffer) == "GET / HTTP/1.1\r\nHo")
        #expect(buffer.capacity < 1024)
    }

    @Test func aBufferMostlyInUseIsLeftAlone() {
        var buffer = ByteBufferAllocator().buffer(capacity: 8192)
        buffer.writeBytes([UInt8](repeating: 7, count: 6000))
        let before = buffer
        buffer.shrinkAfterReads()
        #expect(buffer == before && buffer.capacity == before.capacity)
    }
}
