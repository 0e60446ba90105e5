import NIOCore

extension ByteBuffer {
    /// Appends `bytes` to bytes still waiting to be parsed or translated (a cumulation
    /// buffer), taking `bytes` as they are when nothing waits: no copy in the common case of
    /// a whole message per read or write.
    mutating func accumulate(_ bytes: ByteBuffer) {
        if readableBytes == 0 {
            self = bytes
        } else {
            var bytes = bytes
            writeBuffer(&bytes)
        }
    }

    /// At the end of a read batch: a drained cumulation is dropped, so an idle connection
    /// holds no buffer; a few bytes left in a large buffer (a partial head in one of the
    /// loop's receive buffers, sized for the largest read) are copied into one of their own
    /// size, so a slow client holds what it sent, not 64 KiB.
    mutating func shrinkAfterReads() {
        if readableBytes == 0 {
            if capacity > 0 { self = ByteBuffer() }
        } else if capacity > 4 * readableBytes + 4096 {
            self = ByteBuffer(buffer: self)
        }
    }
}
