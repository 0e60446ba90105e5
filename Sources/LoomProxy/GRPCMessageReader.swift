import NIOCore

/// gRPC's message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): a compressed flag
/// byte, a 4-byte big-endian length, then the message. Loom reads it for plugins' gRPC
/// calls; proxied gRPC passes through unframed.
///
/// A pure value: bytes in as they arrive, whole messages out.
struct GRPCMessageReader {
    enum Failure: Error, Equatable {
        /// A compressed message: loom asks for none (it sends no `grpc-accept-encoding`).
        case compressed
        /// A message longer than the limit.
        case tooLarge(Int)
    }

    let limit: Int
    private var pending = ByteBuffer()

    init(limit: Int) {
        self.limit = limit
    }

    /// No partial message is waiting (at the end of a response, anything else is truncated).
    var isEmpty: Bool { pending.readableBytes == 0 }

    /// What one read gave: the messages `bytes` completed, in order, and, if a frame after
    /// them was bad, why (the messages before it still count: they arrived whole).
    struct Read: Equatable {
        var messages: [[UInt8]] = []
        var failure: Failure?
    }

    /// Reads `bytes` on from what was pending. After a failure the reader is spent.
    mutating func read(_ bytes: ByteBuffer) -> Read {
        var bytes = bytes
        pending.writeBuffer(&bytes)
        var read = Read()
        while let flag = pending.getInteger(at: pending.readerIndex, as: UInt8.self),
              let length = pending.getInteger(at: pending.readerIndex + 1, as: UInt32.self)
        {
            guard flag == 0 else {
                read.failure = .compressed
                break
            }
            guard length <= limit else {
                read.failure = .tooLarge(Int(length))
                break
            }
            guard pending.readableBytes >= 5 + Int(length) else { break }
            pending.moveReaderIndex(forwardBy: 5)
            read.messages.append(pending.readBytes(length: Int(length)) ?? [])
        }
        pending.discardReadBytes()
        return read
    }

    /// `message` framed for sending: uncompressed, with its length.
    static func frame(_ message: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(5 + message.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        return buffer
    }
}
