import LoomConfig
import LoomFilters
import LoomHTTP
import NIOCore

/// An upstream's response head a filter holds (`FilterResponse.hold`), and what the upstream
/// sent after it meanwhile, to be passed on in order once the filter resumes.
final class HeldResponse {
    let head: HTTPResponseHead
    let response: FilterResponse
    /// The filter that holds it.
    let index: Int
    var events: [Event] = []
    /// Body bytes in `events`.
    var bytes = 0

    enum Event {
        case body(ByteBuffer)
        case end(HTTPHeaderBlock?)
    }

    init(head: HTTPResponseHead, response: FilterResponse, index: Int) {
        self.head = head
        self.response = response
        self.index = index
    }
}

/// The end of a body a filter's transform holds (`BodyEndHold`, `TrailersHold`): which
/// body, which transform, and which step waits.
struct BodyEndHeld {
    let direction: DownstreamHandler.BodyDirection
    let index: Int
    let stage: Stage

    enum Stage {
        /// The trailer section (the end-of-stream call comes after it).
        case trailers
        /// The last bytes, with the trailers as the filters left them (sent after them).
        case body(trailers: [HeaderPair]?)
    }
}
