/// An instance's linear memory, with every access checked against its current size.
///
/// Pointers and lengths come from the guest and are untrusted: an access outside the memory
/// is refused (the host function answers `INVALID_MEMORY_ACCESS`), never performed. Engines'
/// own accessors trap the whole process on a bad range, so nothing else touches memory.
public protocol LinearMemory {
    /// Current size in bytes (it grows while the guest runs).
    var byteCount: Int { get }
    /// Calls `body` with `count` bytes at `offset`, or returns nil when they are not all
    /// inside the memory.
    func withBytes<T>(at offset: UInt32, count: UInt32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T?
    /// Calls `body` with `count` writable bytes at `offset`; false when out of range.
    func withMutableBytes(at offset: UInt32, count: UInt32, _ body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> Bool
}

extension LinearMemory {
    /// Whether `count` bytes at `offset` are inside the memory (64-bit sum: no overflow).
    public func contains(_ offset: UInt32, _ count: UInt32) -> Bool {
        UInt64(offset) + UInt64(count) <= UInt64(byteCount)
    }

    /// A copy of `count` bytes at `offset`.
    public func bytes(at offset: UInt32, count: UInt32) -> [UInt8]? {
        withBytes(at: offset, count: count) { Array($0) }
    }

    /// `count` bytes at `offset` as UTF-8 text (invalid sequences repaired).
    public func string(at offset: UInt32, count: UInt32) -> String? {
        withBytes(at: offset, count: count) { String(decoding: $0, as: UTF8.self) }
    }

    public func writeBytes<C: Collection<UInt8>>(_ bytes: C, at offset: UInt32) -> Bool {
        withMutableBytes(at: offset, count: UInt32(clamping: bytes.count)) { target in
            target.copyBytes(from: bytes)
        }
    }

    /// Stores a little-endian u32 at `offset` (an out-parameter).
    public func writeU32(_ value: UInt32, at offset: UInt32) -> Bool {
        withMutableBytes(at: offset, count: 4) { $0.storeBytes(of: value.littleEndian, as: UInt32.self) }
    }

    public func writeU64(_ value: UInt64, at offset: UInt32) -> Bool {
        withMutableBytes(at: offset, count: 8) { $0.storeBytes(of: value.littleEndian, as: UInt64.self) }
    }

    public func readU32(at offset: UInt32) -> UInt32? {
        withBytes(at: offset, count: 4) { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
}
