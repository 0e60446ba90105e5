#if os(Linux)
import Glibc
import NIOCore

/// The loop's scratch space for `writev`: one array of `iovec`s, reused by every channel on
/// the loop (writes are made on the loop's thread, one at a time).
final class IOVectors {
    static let capacity = 64
    private let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: capacity)
    /// The buffers' storage, retained while the kernel reads from it.
    private var storages: [Unmanaged<AnyObject>] = []

    init() {
        storages.reserveCapacity(Self.capacity)
    }

    deinit {
        vectors.deallocate()
    }

    /// One `writev` of `entries` (byte buffers, at most `capacity`): the byte count or -1,
    /// and the bytes offered.
    func write(_ fd: Int32, _ entries: CircularBuffer<IOWriteQueue.Entry>.SubSequence) -> (written: Int, offered: Int) {
        var count = 0
        var offered = 0
        for entry in entries {
            guard case .byteBuffer(let buffer) = entry.data, buffer.readableBytes > 0 else { continue }
            buffer.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
                vectors[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                storages.append(storage.retain())
            }
            count += 1
            offered += buffer.readableBytes
        }
        defer {
            for storage in storages { storage.release() }
            storages.removeAll(keepingCapacity: true)
        }
        guard count > 0 else { return (0, 0) }
        return (writev(fd, vectors, Int32(count)), offered)
    }
}
#endif
