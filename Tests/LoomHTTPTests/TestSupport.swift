import NIOCore
@testable import LoomHTTP

/// Helpers shared by the LoomHTTP tests: outcome summaries that compare by value, so the same
/// input fed whole or split at any offset can be checked for identical results.

/// Everything observable about a parsed request head, in comparable form.
struct RequestSummary: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var path: String
    var minorVersion: Int
    var host: String?
    var framing: HTTPBodyFraming
    var keepAlive: Bool
    var expectsContinue: Bool
    var connectionTokens: [String]
    var fields: [Pair]
    var headLength: Int

    /// A field as strings, for comparisons.
    struct Pair: Equatable { var name: String; var value: String }

    init(_ head: HTTPRequestHead) {
        method = head.method
        target = head.target
        path = head.path
        minorVersion = head.minorVersion
        host = head.host
        framing = head.framing
        keepAlive = head.keepAlive
        expectsContinue = head.expectsContinue
        connectionTokens = head.connectionTokens
        fields = (0..<head.headers.count).map { Pair(name: head.headers.name(at: $0), value: head.headers.value(at: $0)) }
        headLength = head.headers.bytes.readableBytes
    }

    var description: String { "\(method) \(target) 1.\(minorVersion) host=\(host ?? "nil") \(framing) ka=\(keepAlive)" }
}

/// Everything observable about a parsed response head.
struct ResponseSummary: Equatable {
    var status: Int
    var reason: String
    var minorVersion: Int
    var framing: HTTPBodyFraming
    var keepAlive: Bool
    var connectionTokens: [String]
    var fieldCount: Int
    var headLength: Int

    init(_ head: HTTPResponseHead) {
        status = head.status
        reason = head.reason
        minorVersion = head.minorVersion
        framing = head.framing
        keepAlive = head.keepAlive
        connectionTokens = head.connectionTokens
        fieldCount = head.headers.count
        headLength = head.headers.bytes.readableBytes
    }
}

/// The result of feeding bytes to a parser.
enum Outcome<Head: Equatable>: Equatable {
    case head(Head, remaining: Int)
    case error(HTTPParseError)
    case incomplete
}

/// The bytes of a string, for test input.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Parses `input` as a request, fed in pieces that end at each of `cuts` then at the end.
func parseRequest(_ input: [UInt8], cuts: [Int] = [], limits: HTTP1Limits = HTTP1Limits()) -> Outcome<RequestSummary> {
    var parser = HTTP1HeadParser(limits: limits)
    var buffer = ByteBuffer()
    var fed = 0
    for cut in cuts + [input.count] where cut >= fed {
        buffer.writeBytes(input[fed..<cut])
        fed = cut
        do {
            if let head = try parser.parseRequestHead(&buffer) {
                return .head(RequestSummary(head), remaining: buffer.readableBytes + input.count - fed)
            }
        } catch {
            return .error(error)
        }
    }
    return .incomplete
}

/// Parses `input` as a response to `method`, fed in pieces that end at each of `cuts` then at the end.
func parseResponse(_ input: [UInt8], method: String = "GET", cuts: [Int] = [], limits: HTTP1Limits = HTTP1Limits()) -> Outcome<ResponseSummary> {
    var parser = HTTP1HeadParser(limits: limits)
    var buffer = ByteBuffer()
    var fed = 0
    for cut in cuts + [input.count] where cut >= fed {
        buffer.writeBytes(input[fed..<cut])
        fed = cut
        do {
            if let head = try parser.parseResponseHead(&buffer, requestMethod: method) {
                return .head(ResponseSummary(head), remaining: buffer.readableBytes + input.count - fed)
            }
        } catch {
            return .error(error)
        }
    }
    return .incomplete
}

/// Extracts a request summary or fails the caller's expectation with a readable message.
func requestHead(_ s: String, limits: HTTP1Limits = HTTP1Limits()) -> RequestSummary? {
    if case .head(let head, _) = parseRequest(bytes(s), limits: limits) { return head }
    return nil
}

/// The error a request fails with, or nil.
func requestError(_ s: String, limits: HTTP1Limits = HTTP1Limits()) -> HTTPParseError? {
    if case .error(let e) = parseRequest(bytes(s), limits: limits) { return e }
    return nil
}

/// The error a response fails with, or nil.
func responseError(_ s: String, method: String = "GET") -> HTTPParseError? {
    if case .error(let e) = parseResponse(bytes(s), method: method) { return e }
    return nil
}

/// Decodes a whole body from `input` fed in pieces ending at `cuts`; returns the data, the
/// trailers as name/value pairs (nil if none), or the error.
func decodeBody(
    _ input: [UInt8], framing: HTTPBodyFraming, cuts: [Int] = [], limits: HTTP1Limits = HTTP1Limits(), close: Bool = false
) -> Result<(data: [UInt8], trailers: [RequestSummary.Pair]?, remaining: Int), HTTPParseError> {
    var decoder = HTTP1BodyDecoder(framing: framing, limits: limits)
    var buffer = ByteBuffer()
    var data: [UInt8] = []
    var fed = 0
    do {
        for cut in cuts + [input.count] where cut >= fed {
            buffer.writeBytes(input[fed..<cut])
            fed = cut
            while let event = try decoder.next(&buffer) {
                switch event {
                case .data(let slice):
                    data += slice.readableBytesView
                case .end(let trailers):
                    let pairs = trailers.map { t in (0..<t.count).map { RequestSummary.Pair(name: t.name(at: $0), value: t.value(at: $0)) } }
                    return .success((data, pairs, buffer.readableBytes + input.count - fed))
                }
            }
        }
        if close, case .end = try decoder.finishOnClose() { return .success((data, nil, 0)) }
        return .failure(.prematureEnd)
    } catch {
        return .failure(error)
    }
}
