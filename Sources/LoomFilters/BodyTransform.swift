import LoomConfig
import NIOCore

/// One exchange's handling of body bytes in one direction: Proxy-Wasm's body phases
/// (`on_http_request_body`, `on_http_response_body`) as a per-exchange object.
///
/// A filter creates one in a headers phase (`FilterRequest.transformBody`,
/// `FilterResponse.transformBody`) when it wants the body: the filter itself stays shared and
/// stateless, and whatever the body needs from one chunk to the next (a compressor, a byte
/// count) lives here. Loom calls it with each chunk in order as it passes, on the exchange's
/// event loop, and once with `endOfStream` (the chunk may then be empty).
///
/// It returns the bytes to pass on: the chunk itself, other bytes, or nothing yet. Keeping
/// bytes back and releasing them later (at the end, say) is Proxy-Wasm's
/// `StopIterationAndBuffer`: the transform holds what it buffers, so it also bounds it.
///
/// Throwing `FilterRejection` refuses the request (a body over a size limit: 413), when the
/// response has not started; any other error is a failure of the filter (500, or a cut
/// connection once the response is under way).
///
/// A body a transform handles may change length: loom sends it chunked (HTTP/1.1) or
/// close-delimited (an HTTP/1.0 client), never with the original `Content-Length`.
///
/// A body that ends with a trailer section (HTTP/1.1 chunked) passes its fields through
/// `trailers` before the end-of-stream call; what it returns is sent on (response trailers;
/// loom drops request trailers after the filters saw them, as nginx does).
///
/// At the end of the body a transform may also throw `BodyEndHold` to give its last bytes
/// later (Proxy-Wasm's Pause with `end_of_stream`, while a plugin makes an HTTP call), and
/// `trailers` may throw `TrailersHold` to give its fields later: the end of the body waits,
/// bounded by the idle timeout.
public protocol BodyTransform: AnyObject {
    func transform(_ chunk: ByteBuffer, endOfStream: Bool) throws -> ByteBuffer
    func trailers(_ fields: [HeaderPair]) throws -> [HeaderPair]
}

extension BodyTransform {
    public func trailers(_ fields: [HeaderPair]) throws -> [HeaderPair] { fields }
}

/// Thrown by a transform to give its output for the end of a body later: loom calls `start`
/// once, on the exchange's event loop, and the end of the body waits until `finish` is
/// called (from any thread, once) with what gives the output (the last bytes, the trailer
/// fields). Loom runs that later on the exchange's event loop; it may throw as the
/// transform may (a `FilterRejection` refuses the request).
public struct EndHold<Output>: Error {
    public typealias Finish = @Sendable (_ output: @escaping @Sendable () throws -> Output) -> Void
    public let start: (_ finish: @escaping Finish) -> Void

    public init(_ start: @escaping (_ finish: @escaping Finish) -> Void) {
        self.start = start
    }
}

/// Held by `transform` at the end of the body: its last bytes come later.
public typealias BodyEndHold = EndHold<ByteBuffer>
/// Held by `trailers`: the trailer section (and the end after it) comes later.
public typealias TrailersHold = EndHold<[HeaderPair]>

/// The body transforms of one direction of one exchange, in filter order: each one's output
/// is the next one's input.
public struct BodyTransforms {
    public private(set) var transforms: [any BodyTransform] = []

    public init() {}

    public var isEmpty: Bool { transforms.isEmpty }

    public mutating func append(_ transform: any BodyTransform) {
        transforms.append(transform)
    }

    /// Why a chunk went no further.
    public enum Stop: Error {
        case rejected(FilterRejection)
        case failed(FilterFailure)
        /// Transform `index` holds the end of the body: start `hold`, then `resume` with what
        /// it finishes with.
        case held(index: Int, BodyEndHold)
        /// Transform `index` holds the trailer section: start `hold`, then `resume(trailersAt:)`.
        case trailersHeld(index: Int, TrailersHold)
    }

    /// `chunk` through every transform (from transform `start` on).
    public func run(_ chunk: ByteBuffer, endOfStream: Bool, from start: Int = 0) -> Result<ByteBuffer, Stop> {
        each(chunk, phase: "body", from: start) { try $0.transform($1, endOfStream: endOfStream) }
    }

    /// A trailer section through every transform (from transform `start` on).
    public func run(trailers: [HeaderPair], from start: Int = 0) -> Result<[HeaderPair], Stop> {
        each(trailers, phase: "trailers", from: start) { try $0.trailers($1) }
    }

    /// Goes on after transform `index` held the end of the body and finished with `result`:
    /// its bytes through the transforms after it.
    public func resume(at index: Int, with result: Result<ByteBuffer, any Error>) -> Result<ByteBuffer, Stop> {
        switch result {
        case .success(let bytes): return run(bytes, endOfStream: true, from: index + 1)
        case .failure(let error): return .failure(Self.stop(error, of: transforms[index], phase: "body"))
        }
    }

    /// Goes on after transform `index` held the trailers and finished with `result`: its
    /// fields through the transforms after it.
    public func resume(trailersAt index: Int, with result: Result<[HeaderPair], any Error>) -> Result<[HeaderPair], Stop> {
        switch result {
        case .success(let fields): return run(trailers: fields, from: index + 1)
        case .failure(let error): return .failure(Self.stop(error, of: transforms[index], phase: "trailers"))
        }
    }

    private func each<Value>(_ input: Value, phase: String, from start: Int = 0, _ step: (any BodyTransform, Value) throws -> Value) -> Result<Value, Stop> {
        var value = input
        for index in transforms.indices where index >= start {
            do {
                value = try step(transforms[index], value)
            } catch let hold as BodyEndHold {
                return .failure(.held(index: index, hold))
            } catch let hold as TrailersHold {
                return .failure(.trailersHeld(index: index, hold))
            } catch {
                return .failure(Self.stop(error, of: transforms[index], phase: phase))
            }
        }
        return .success(value)
    }

    private static func stop(_ error: any Error, of transform: any BodyTransform, phase: String) -> Stop {
        if let rejection = error as? FilterRejection { return .rejected(rejection) }
        return .failed(FilterFailure(filter: "\(type(of: transform))", phase: phase, error: "\(error)"))
    }
}
