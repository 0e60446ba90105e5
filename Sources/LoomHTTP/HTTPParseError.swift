/// Why bytes can never become a valid HTTP/1.x message.
///
/// Errors are data: each case knows the status a server answers a client with. The proxy maps
/// every error in an upstream *response* to 502 instead; `status` is the downstream view.
/// Cases are deliberately specific so access logs and tests can say which rule fired.
public enum HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    // Start line.
    case invalidRequestLine
    case invalidMethod
    case invalidTarget
    case uriTooLong
    case unsupportedVersion
    case invalidStatusLine
    // Head size.
    case headTooLarge
    case tooManyFields
    // Line and field syntax.
    case invalidFieldName
    case whitespaceBeforeColon
    case obsFold
    case bareCR
    case bareLF
    case controlCharacter
    // Field semantics.
    case missingHost
    case duplicateHost
    case invalidHost
    case unsupportedExpectation
    // Framing (the smuggling-relevant rules).
    case contentLengthWithTransferEncoding
    case invalidContentLength
    case conflictingContentLength
    case unsupportedTransferCoding
    case repeatedTransferCoding
    case transferEncodingInHTTP10
    // Body.
    case invalidChunkSize
    case chunkSizeOverflow
    case invalidChunkExtension
    case chunkLineTooLong
    case invalidChunkTerminator
    case invalidTrailer
    case bodyTooLarge
    case prematureEnd

    /// The status a server answers a client with when its request fails this way.
    public var status: Int {
        switch self {
        case .uriTooLong: 414
        case .headTooLarge, .tooManyFields: 431
        case .bodyTooLarge: 413
        case .unsupportedExpectation: 417
        case .unsupportedVersion: 505
        default: 400
        }
    }

    /// A short, specific, lower-case explanation for logs and error bodies.
    public var description: String {
        switch self {
        case .invalidRequestLine: "malformed request line"
        case .invalidMethod: "invalid method token"
        case .invalidTarget: "invalid request-target"
        case .uriTooLong: "request-target too long"
        case .unsupportedVersion: "unsupported http version"
        case .invalidStatusLine: "malformed status line"
        case .headTooLarge: "head too large"
        case .tooManyFields: "too many header fields"
        case .invalidFieldName: "invalid field name"
        case .whitespaceBeforeColon: "whitespace between field name and colon"
        case .obsFold: "obsolete line folding"
        case .bareCR: "bare cr"
        case .bareLF: "bare lf as line terminator"
        case .controlCharacter: "control character in head"
        case .missingHost: "missing host"
        case .duplicateHost: "more than one host"
        case .invalidHost: "invalid host"
        case .unsupportedExpectation: "unsupported expectation"
        case .contentLengthWithTransferEncoding: "content-length and transfer-encoding together"
        case .invalidContentLength: "invalid content-length"
        case .conflictingContentLength: "conflicting content-length values"
        case .unsupportedTransferCoding: "unsupported transfer coding"
        case .repeatedTransferCoding: "chunked applied more than once"
        case .transferEncodingInHTTP10: "transfer-encoding in an http/1.0 message"
        case .invalidChunkSize: "invalid chunk size"
        case .chunkSizeOverflow: "chunk size overflow"
        case .invalidChunkExtension: "invalid chunk extension"
        case .chunkLineTooLong: "chunk size line too long"
        case .invalidChunkTerminator: "chunk data not followed by crlf"
        case .invalidTrailer: "invalid trailer section"
        case .bodyTooLarge: "body too large"
        case .prematureEnd: "connection closed before the message ended"
        }
    }
}
