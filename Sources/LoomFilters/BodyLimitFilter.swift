import LoomConfig
import NIOCore

/// `body_limit`: request bodies larger than `max_size` are refused with 413, as nginx's
/// `client_max_body_size` does, per route (the server-wide `limits.max_body_size` still
/// applies to every request).
///
/// A declared `Content-Length` is judged before anything goes upstream. A chunked body is
/// counted as it streams: the request is refused when the count passes the limit, with 413
/// if the upstream has not answered yet (its connection is closed mid-request); bodies are
/// never buffered to decide.
struct BodyLimitFilter: HTTPFilter {
    let name = "body_limit"
    let maxSize: Int
    let refusal: FilterRejection

    static let factory: FilterRegistry.Factory = { settings in
        guard case .bodyLimit(let settings) = settings else { return nil }
        return BodyLimitFilter(maxSize: settings.maxSize)
    }

    init(maxSize: Int) {
        self.maxSize = maxSize
        refusal = FilterRejection(status: 413, code: "payload_too_large", message: "request body larger than \(maxSize) bytes")
    }

    func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        switch request.head.framing {
        case .contentLength(let length):
            return length > maxSize ? .reject(refusal) : .continue
        case .chunked:
            request.transformBody(Counter(limit: maxSize, refusal: refusal))
            return .continue
        case .none, .untilClose:
            return .continue
        }
    }

    /// Counts a streamed body's bytes and passes them on unchanged until the limit.
    final class Counter: BodyTransform {
        let limit: Int
        let refusal: FilterRejection
        private var seen = 0

        init(limit: Int, refusal: FilterRejection) {
            self.limit = limit
            self.refusal = refusal
        }

        func transform(_ chunk: ByteBuffer, endOfStream: Bool) throws -> ByteBuffer {
            seen += chunk.readableBytes
            if seen > limit { throw refusal }
            return chunk
        }
    }
}
