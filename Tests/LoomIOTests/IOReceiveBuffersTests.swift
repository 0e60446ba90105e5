import NIOCore
import Testing

@testable import LoomIO

@Suite struct IOReceiveBuffersTests {
    private let allocator = ByteBufferAllocator()

    /// Writes `text` the way a read does, into whatever buffer the ring offers.
    private func read(_ text: String, into ring: inout IOReceiveBuffers, size: Int = 64) -> ByteBuffer {
        ring.withBuffer(size: size, allocator: allocator) { buffer in
            buffer.writeString(text)
        }.0
    }

    private func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { $0.baseAddress }
    }

    @Test func aBufferLetGoIsReusedByALaterRead() {
        var ring = IOReceiveBuffers(slots: 1)
        var first: ByteBuffer? = read("first", into: &ring)
        let firstAddress = first.map(address)
        first = nil
        let second = read("second", into: &ring)
        #expect(address(second) == firstAddress)
        #expect(String(buffer: second) == "second")
    }

    @Test func aHeldBufferIsNeverWrittenOver() {
        var ring = IOReceiveBuffers(slots: 2)
        let held = read("held", into: &ring)
        let other = read("other", into: &ring)
        let third = read("third", into: &ring)
        #expect(String(buffer: held) == "held")
        #expect(String(buffer: other) == "other")
        #expect(String(buffer: third) == "third")
        #expect(address(held) != address(third) && address(other) != address(third))
    }

    @Test func whenEveryProbedSlotIsHeldANewBufferReplacesOne() {
        let slots = IOReceiveBuffers.probes + 2
        var ring = IOReceiveBuffers(slots: slots)
        let held = (0..<(3 * slots)).map { read("read \($0)", into: &ring) }
        #expect(ring.stored == slots)
        for (index, buffer) in held.enumerated() {
            #expect(String(buffer: buffer) == "read \(index)")
        }
    }

    @Test func aReusedBufferGrowsToTheSizeAskedFor() {
        var ring = IOReceiveBuffers(slots: 1)
        _ = read("small", into: &ring, size: 64)
        let (buffer, room) = ring.withBuffer(size: 4096, allocator: allocator) { $0.writableBytes }
        #expect(room >= 4096 && buffer.readableBytes == 0)
    }
}
