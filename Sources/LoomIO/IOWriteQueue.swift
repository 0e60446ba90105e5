import NIOCore

/// A channel's writes not yet taken by its socket, in order, with their promises: the part
/// before the last flush may go out, the rest waits for the next `flush`. Pure: the channel
/// writes what `flushedBuffers`/`first` show and reports back how much the socket took.
struct IOWriteQueue {
    struct Entry {
        var data: IOData
        var promise: EventLoopPromise<Void>?
    }

    private var entries = CircularBuffer<Entry>(initialCapacity: 4)
    /// How many entries from the front are flushed.
    private(set) var flushedCount = 0
    /// Bytes in every entry, flushed or not: what the write watermarks are about.
    private(set) var bytes = 0

    var isEmpty: Bool { entries.isEmpty }
    var hasFlushed: Bool { flushedCount > 0 }

    mutating func append(_ data: IOData, promise: EventLoopPromise<Void>?) {
        entries.append(Entry(data: data, promise: promise))
        bytes += data.readableBytes
    }

    mutating func markFlushed() {
        flushedCount = entries.count
    }

    /// The first flushed entry's data.
    var first: IOData? { flushedCount > 0 ? entries.first?.data : nil }

    /// Calls `body` with the flushed byte buffers at the front, up to `limit` of them (a
    /// file region ends the run: it goes out on its own).
    func withFlushedBuffers<T>(limit: Int, _ body: (CircularBuffer<Entry>.SubSequence) -> T) -> T {
        var end = entries.startIndex
        var count = 0
        while count < min(limit, flushedCount), case .byteBuffer = entries[end].data {
            end = entries.index(after: end)
            count += 1
        }
        return body(entries[entries.startIndex..<end])
    }

    /// The socket took `written` bytes from the front. Entries written whole leave the queue;
    /// their promises are appended to `done` for the caller to succeed once its own state is
    /// consistent (a promise's callbacks may write or close).
    mutating func consume(_ written: Int, done: inout [EventLoopPromise<Void>]) {
        var remaining = written
        bytes -= written
        while flushedCount > 0 {
            let size = entries[entries.startIndex].data.readableBytes
            if size > remaining {
                if remaining > 0 { advance(by: remaining) }
                return
            }
            remaining -= size
            let entry = entries.removeFirst()
            flushedCount -= 1
            if let promise = entry.promise { done.append(promise) }
        }
    }

    private mutating func advance(by count: Int) {
        let index = entries.startIndex
        switch entries[index].data {
        case .byteBuffer(var buffer):
            buffer.moveReaderIndex(forwardBy: count)
            entries[index].data = .byteBuffer(buffer)
        case .fileRegion(var region):
            region.moveReaderIndex(forwardBy: count)
            entries[index].data = .fileRegion(region)
        }
    }

    /// Empties the queue (the channel closed, or its output did); the promises to fail.
    mutating func removeAll() -> [EventLoopPromise<Void>] {
        let promises = entries.compactMap(\.promise)
        entries.removeAll()
        flushedCount = 0
        bytes = 0
        return promises
    }
}
