import NIOCore

/// The size of one read, for the loop's shared receive buffers: the channel's own allocator
/// (the `.recvAllocator` option, adaptive by default) decides it and learns from the result;
/// this carries only the number, small enough to sit in the pool's existential without a
/// heap box (copying the adaptive allocator there cost an allocation per read).
struct IOReadSize: RecvByteBufferAllocator {
    var size: Int

    func nextBufferSize() -> Int? { size }

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: size)
    }

    mutating func record(actualReadBytes: Int) -> Bool { false }
}
