import NIOCore

/// After an `Upgrade: h2c` switch, puts the upgraded request in front of NIOHTTP2 as the
/// HEADERS frame of stream 1, right after the client's connection preface and first
/// SETTINGS frame (RFC 9113 §3.4 says they come first), then steps aside.
///
/// The request arrived in HTTP/1.1, but from then on it is stream 1, half-closed by the
/// client (RFC 7540 §3.2): splicing its frame into the byte stream makes NIOHTTP2 open the
/// stream as if the client had sent it, so it is served like any other stream. The frame's
/// header block uses no HPACK indexing, so the decoder's table stays what the client's
/// encoder believes it is. Bytes before the splice are bounded by the preface and one
/// SETTINGS frame; a client that sends something else is handed on as is, and NIOHTTP2
/// refuses it.
final class H2CUpgradeSplicer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var frame: ByteBuffer
    private var held = ByteBuffer()

    init(firstStream frame: ByteBuffer) {
        self.frame = frame
    }

    /// What the client's first bytes allow.
    enum Splice: Equatable {
        case needMore
        /// The preface and the first SETTINGS frame end this many bytes in.
        case after(Int)
        /// Not a preface and SETTINGS: hand on as is, for NIOHTTP2 to refuse.
        case unexpected
    }

    static func splice(_ bytes: ByteBuffer) -> Splice {
        let preface = ProtocolSelector.preface.count
        switch ProtocolSelector.matchPreface(bytes) {
        case false?: return .unexpected
        case nil: return .needMore
        case true?: break
        }
        guard bytes.readableBytes >= preface + 9,
              let word = bytes.getInteger(at: bytes.readerIndex + preface, as: UInt32.self)
        else { return .needMore }
        // The frame header: a 24-bit length, then the type (SETTINGS is 4). A frame over the
        // default maximum size is an error NIOHTTP2 reports; not something to wait for.
        guard word & 0xff == 0x4, word >> 8 <= H2CUpgrade.maxBlock else { return .unexpected }
        let end = preface + 9 + Int(word >> 8)
        return bytes.readableBytes >= end ? .after(end) : .needMore
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        held.writeBuffer(&bytes)
        var out: ByteBuffer
        switch Self.splice(held) {
        case .needMore:
            return
        case .after(let offset):
            out = held.readSlice(length: offset)!
            out.writeBuffer(&frame)
            out.writeBuffer(&held)
        case .unexpected:
            out = held
        }
        held = ByteBuffer()
        context.fireChannelRead(wrapInboundOut(out))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
