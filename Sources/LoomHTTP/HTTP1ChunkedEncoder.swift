import NIOCore

/// Writes the chunked transfer coding (RFC 9112 §7.1).
///
/// Stateless: the proxy re-frames a streamed body chunk by chunk as slices arrive, so each
/// call writes one complete chunk. Writes go straight into the caller's outbound buffer with
/// no intermediate strings (the size is formatted as hex digit by digit).
public enum HTTP1ChunkedEncoder {
    /// Writes `hex-size CRLF data CRLF`. Empty data writes nothing: a zero-size chunk would
    /// end the body early.
    public static func writeChunk(_ data: ByteBuffer, into out: inout ByteBuffer) {
        let size = data.readableBytes
        guard size > 0 else { return }
        writeHex(size, into: &out)
        out.writeStaticString("\r\n")
        out.writeImmutableBuffer(data)
        out.writeStaticString("\r\n")
    }

    /// Writes the last chunk `0 CRLF`, the trailer fields `keep` accepts (all of them unless
    /// told otherwise) and the final CRLF.
    public static func writeEnd(trailers: HTTPHeaderBlock?, where keep: (Int) -> Bool = { _ in true }, into out: inout ByteBuffer) {
        // A received line is written at most one byte longer (a space after the colon).
        out.writeHead(reserving: 5 + (trailers.map { $0.bytes.readableBytes + $0.count } ?? 0)) { out in
            out.writeStaticString("0\r\n")
            trailers?.writeFields(into: &out, where: keep)
            out.writeStaticString("\r\n")
        }
    }

    /// Lower-case hex without leading zeros.
    private static func writeHex(_ value: Int, into out: inout ByteBuffer) {
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (value >> shift) & 0xF)
            out.writeInteger(nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "a"))
            shift -= 4
        }
    }
}
