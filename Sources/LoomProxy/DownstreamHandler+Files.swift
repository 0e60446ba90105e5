#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// File answers (`static` routes, X-Sendfile): the head, then the file in slices, through
/// sendfile, or read and encrypted over TLS.
extension DownstreamHandler {
    /// Writes a file answer: the head (with the response filters' and the route's fields),
    /// then the file's bytes straight from the file, and ends the exchange once they are out.
    func writeFileResponse(_ answer: FileServer.Answer, closeAfter: Bool) {
        guard let context, let exchange else {
            try? answer.body?.handle.close()
            return
        }
        defer { flushClient() }
        let headers = localFields(answer.headers, status: answer.status, exchange)
        var out = context.channel.allocator.buffer(capacity: 256)
        ErrorResponse.writeHead(status: answer.status, headers: headers, contentLength: answer.contentLength, date: loop.date.current(), close: closeAfter, into: &out)
        writeLocalResponse(out, status: answer.status)
        guard let body = answer.body else {
            finishExchange()
            return
        }
        // The exchange stays open while the file goes out, under its idle timeout: a client
        // that takes no bytes for that long is cut off, a slow one that keeps reading is not.
        startExchangeTimers(exchange, now: loop.now)
        sendFileSlice(body, from: body.range.lowerBound, serial: exchangeSerial)
    }

    /// File bytes leave in slices of this size, each written when the last has gone to the
    /// socket: the progress counts as activity, and a slow client holds one slice at most.
    /// Without sendfile (TLS, HTTP/2) a slice is read into memory first, hence smaller.
    static let fileSlice = 256 * 1024
    static let readFileSlice = 64 * 1024

    /// Writes the slice of `body` starting at `offset` (sendfile, through a `FileRegion`;
    /// else read, then encrypted or framed); the next follows when it is written, and the last ends
    /// the exchange. A write that fails (the client went away) or an exchange that ended
    /// meanwhile closes the file.
    private func sendFileSlice(_ body: FileServer.Body, from offset: Int, serial: Int) {
        guard let context else {
            try? body.handle.close()
            return
        }
        // sendfile needs the socket itself: not under TLS (encrypted in user space) nor on an
        // HTTP/2 stream (framed by HTTP2StreamBridge).
        let sendfile = tls == nil && !isHTTP2Stream
        let end = min(offset + (sendfile ? Self.fileSlice : Self.readFileSlice), body.range.upperBound + 1)
        let data: IOData
        if sendfile {
            data = .fileRegion(FileRegion(fileHandle: body.handle, readerIndex: offset, endIndex: end))
        } else if let slice = Self.read(body.handle, from: offset, count: end - offset, allocator: context.channel.allocator) {
            // No sendfile: the slice is read on the loop (from the page cache, as nginx does
            // without aio threads).
            data = .byteBuffer(slice)
        } else {
            // The file shrank or failed under us: the response cannot be completed.
            try? body.handle.close()
            context.close(promise: nil)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { result in
            guard case .success = result, self.exchangeSerial == serial, let exchange = self.exchange else {
                try? body.handle.close()
                return
            }
            exchange.bytesOut += end - offset
            self.noteActivity()
            if end > body.range.upperBound {
                try? body.handle.close()
                self.finishExchange()
            } else {
                self.sendFileSlice(body, from: end, serial: serial)
            }
        }
        context.writeAndFlush(NIOAny(data), promise: written)
    }

    /// `count` bytes of `handle` from `offset`, or nil if the file has fewer or cannot be read.
    private static func read(_ handle: NIOFileHandle, from offset: Int, count: Int, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var buffer = allocator.buffer(capacity: count)
        do {
            while buffer.readableBytes < count {
                let (want, at) = (count - buffer.readableBytes, offset + buffer.readableBytes)
                let got = try handle.withUnsafeFileDescriptor { fd in
                    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { space in
                        max(0, pread(fd, space.baseAddress, want, off_t(at)))
                    }
                }
                if got == 0 { return nil }
            }
        } catch {
            return nil
        }
        return buffer
    }
}
