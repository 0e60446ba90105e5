import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import LoomProxy

/// `HTTP2StreamBridge` on an `EmbeddedChannel` standing in for a stream channel: frames in
/// become HTTP/1.1 bytes for the handler after it, HTTP/1.1 bytes written become frames, and
/// the ways HTTP/1.1 ends a message map onto the stream's end or reset.
@Suite struct HTTP2StreamBridgeTests {
    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2StreamBridge())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func headers(_ fields: [(String, String)], endStream: Bool) -> HTTP2Frame.FramePayload {
        .headers(.init(headers: HPACKHeaders(fields), endStream: endStream))
    }

    static let post = [(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/up")]

    /// The frames written so far, as (kind, endStream) with DATA's text.
    static func written(_ channel: EmbeddedChannel) throws -> [String] {
        var frames: [String] = []
        while let payload = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) {
            switch payload {
            case .headers(let h): frames.append("HEADERS \(h.headers.first(name: ":status") ?? "trailers")\(h.endStream ? " END" : "")")
            case .data(let d):
                guard case .byteBuffer(let bytes) = d.data else { continue }
                frames.append("DATA \(String(buffer: bytes))\(d.endStream ? " END" : "")")
            case .rstStream(let code): frames.append("RST \(code.networkCode)")
            default: frames.append("\(payload)")
            }
        }
        return frames
    }

    @Test func aRequestStreamBecomesHTTP11BytesAndTheResponseFrames() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.headers(Self.post, endStream: false))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "abc")), endStream: true)))
        var bytes = ByteBuffer()
        while var part = try channel.readInbound(as: ByteBuffer.self) { bytes.writeBuffer(&part) }
        #expect(String(buffer: bytes) == "POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")

        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.write(ByteBuffer(string: "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"), promise: done)
        channel.flush()
        #expect(try Self.written(channel) == ["HEADERS 201", "DATA ok END"])
        #expect(throws: Never.self) { try done.futureResult.wait() }
        _ = try? channel.finish()
    }

    @Test func closingTheOutputEndsAClosedDelimitedBodyInsteadOfResetting() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.headers([(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")], endStream: true))
        channel.writeAndFlush(ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\npartial"), promise: nil)
        let closed = channel.eventLoop.makePromise(of: Void.self)
        channel.close(mode: .output, promise: closed)
        #expect(throws: Never.self) { try closed.futureResult.wait() }
        #expect(channel.isActive, "the stream is not reset")
        #expect(try Self.written(channel) == ["HEADERS 200", "DATA partial", "DATA  END"])
        _ = try? channel.finish()
    }

    @Test func aWholeResponseToARequestStillArrivingAsksTheClientToStopWithoutError() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.headers(Self.post + [("content-length", "100")], endStream: false))
        channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"), promise: nil)
        // DownstreamHandler's lingering close starts with the output: the stream goes at once.
        channel.close(mode: .output, promise: nil)
        #expect(!channel.isActive)
        let frames = try Self.written(channel)
        #expect(frames == ["HEADERS 413 END", "RST 0"], "\(frames)")
    }

    @Test func aFileRegionFailsItsWriteNotTheProcess() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.headers([(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")], endStream: true))
        let handle = try NIOFileHandle(_deprecatedPath: "/dev/null")
        defer { try? handle.close() }
        let region = FileRegion(fileHandle: handle, readerIndex: 0, endIndex: 0)
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(IOData.fileRegion(region), promise: written)
        #expect(throws: ChannelError.self) { try written.futureResult.wait() }
        #expect(!channel.isActive)
    }

    @Test func aCutResponseIsNotEnded() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.headers([(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")], endStream: true))
        channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), promise: nil)
        channel.close(promise: nil)
        // No END_STREAM: the stream channel's close resets the stream (RST_STREAM CANCEL).
        #expect(try Self.written(channel) == ["HEADERS 200", "DATA abc"])
    }

    @Test func aMalformedRequestIsReset() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.headers(
            [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":authority", "a"), (":path", "/ws")], endStream: true))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        let frames = try Self.written(channel)
        #expect(frames == ["RST 1"], "\(frames)")
        #expect(!channel.isActive)
    }
}
