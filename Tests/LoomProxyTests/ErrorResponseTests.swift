import NIOCore
import Testing

@testable import LoomProxy

@Suite struct ErrorResponseTests {
    @Test func unknownStatusesGetAnEmptyReasonPhrase() {
        var out = ByteBuffer()
        ErrorResponse.writeSimple(status: 299, headers: [], body: "x", date: "D", close: false, headRequest: false, into: &out)
        #expect(String(buffer: out) == "HTTP/1.1 299 \r\nDate: D\r\nContent-Length: 1\r\n\r\nx")
        #expect(ErrorResponse.reasonPhrase(410) == "Gone")
    }

    @Test func errorBodyIsJSONWithTheRequestIDAndEscapedText() {
        var out = ByteBuffer()
        ErrorResponse.write(
            GatewayError(.methodNotAllowed(allowed: ["GET", "HEAD"])), requestID: "id\"1", requestIDHeader: "X-Request-ID",
            date: "D", close: true, headRequest: false, into: &out)
        let text = String(buffer: out)
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(text.contains("Allow: GET, HEAD\r\n"))
        #expect(text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix(#"{"error":"method_not_allowed","message":"method not allowed on this route","status":405,"request_id":"id\"1"}"# + "\n"))
    }
}
