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
}
