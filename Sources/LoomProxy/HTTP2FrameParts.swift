import LoomHTTP
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One frame's worth of an HTTP/1.1 message turned into HTTP/2: the head (HEADERS), body
/// bytes (DATA) or trailers (HEADERS that end the stream).
enum HTTP2FramePart: Equatable {
    case head(HPACKHeaders, endStream: Bool)
    case data(ByteBuffer, endStream: Bool)
    case trailers(HPACKHeaders)

}

/// The body half of turning an HTTP/1.1 message into HTTP/2 frames, shared by the response
/// a client gets (`HTTP2ResponseTranslator`) and the request an HTTP/2 upstream gets
/// (`HTTP2UpstreamRequestTranslator`): decoded body bytes become DATA, a chunked trailer
/// section the trailing HEADERS, and the end of the body END_STREAM on the last frame this
/// write produced (the head's, when the body is empty), so a small message is one or two
/// frames.
struct HTTP2BodyFramer {
    private var decoder: HTTP1BodyDecoder

    init(framing: HTTPBodyFraming) {
        decoder = HTTP1BodyDecoder(framing: framing)
    }

    /// Appends the frames the bytes in `pending` complete, consuming them; true once the
    /// body (and the stream) ended.
    mutating func frames(from pending: inout ByteBuffer, into parts: inout [HTTP2FramePart]) throws(HTTPParseError) -> Bool {
        while let event = try decoder.next(&pending) {
            switch event {
            case .data(let slice):
                parts.append(.data(slice, endStream: false))
            case .end(let trailers?) where trailers.count > 0:
                parts.append(.trailers(Self.fields(trailers)))
                return true
            case .end:
                Self.end(&parts)
                return true
            }
        }
        return false
    }

    /// END_STREAM on the last frame produced, or an empty DATA frame carrying it.
    static func end(_ parts: inout [HTTP2FramePart]) {
        switch parts.last {
        case .data(let last, endStream: false)?:
            parts[parts.count - 1] = .data(last, endStream: true)
        case .head(var fields, endStream: false)?:
            // END_STREAM on the head says there is no body: `content-length: 0` says nothing
            // more (and gRPC clients would list it among a trailers-only response's trailers).
            if fields.first(name: "content-length") == "0" { fields.remove(name: "content-length") }
            parts[parts.count - 1] = .head(fields, endStream: true)
        default:
            parts.append(.data(ByteBuffer(), endStream: true))
        }
    }

    /// A trailer section's fields, names lower-cased as HTTP/2 requires.
    static func fields(_ trailers: HTTPHeaderBlock) -> HPACKHeaders {
        var fields = HPACKHeaders()
        for index in 0..<trailers.count {
            fields.add(name: trailers.name(at: index).lowercased(), value: trailers.value(at: index))
        }
        return fields
    }
}

extension HTTP2Frame.FramePayload {
    init(_ part: HTTP2FramePart) {
        switch part {
        case .head(let fields, let endStream): self = .headers(.init(headers: fields, endStream: endStream))
        case .data(let bytes, let endStream): self = .data(.init(data: .byteBuffer(bytes), endStream: endStream))
        case .trailers(let fields): self = .headers(.init(headers: fields, endStream: true))
        }
    }
}
