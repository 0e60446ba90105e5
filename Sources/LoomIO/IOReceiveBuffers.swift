import NIOCore

/// The loop's receive buffers: a read lands in one, which is handed on up the pipeline and
/// reused by a later read once every holder has let go of it. Idle connections hold none.
///
/// A ring rather than NIO's `NIOPooledRecvBufferAllocator`, for two reasons measured under
/// the small GET (docs/BENCHMARKS.md, "Allocations per small GET"):
/// - Buffers stay held for a while after their read: bytes written on to the other side are
///   kept until the loop tick's flush, and one tick serves up to 256 events. NIO's pool of 8
///   ran dry and allocated two objects per request.
/// - NIO's pool scans every stored buffer before it allocates, which with many held buffers
///   costs a cache miss each. Here a read looks at most `probes` slots from where the last
///   one stopped: buffers are let go roughly in the order they were taken, so the slot after
///   the last one used is the likeliest to be free. When none of them is, a new buffer takes
///   the slot, and the held one it replaces is freed by its holder.
struct IOReceiveBuffers {
    private var slots: [ByteBuffer?]
    private var next = 0
    static let probes = 4

    init(slots: Int) {
        precondition(slots > 0)
        self.slots = Array(repeating: nil, count: slots)
    }

    /// Runs `read` on an empty buffer with at least `size` bytes of room and returns the
    /// buffer with what `read` wrote into it.
    mutating func withBuffer<Result>(
        size: Int, allocator: ByteBufferAllocator, _ read: (inout ByteBuffer) -> Result
    ) -> (ByteBuffer, Result) {
        for probe in 0..<min(Self.probes, slots.count) {
            let index = (next + probe) % slots.count
            let reused = slots[index]?.modifyIfUniquelyOwned { buffer in
                buffer.clear(minimumCapacity: size)
                return read(&buffer)
            }
            if let reused {
                next = (index + 1) % slots.count
                return (slots[index]!, reused)
            }
        }
        var buffer = allocator.buffer(capacity: size)
        let result = read(&buffer)
        slots[next] = buffer
        next = (next + 1) % slots.count
        return (buffer, result)
    }

    /// The buffers the ring holds (for tests).
    var stored: Int { slots.count { $0 != nil } }
}
