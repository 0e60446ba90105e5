import LoomHTTP
import NIOCore
import Testing

@testable import LoomProxy

@Suite struct RequestIDTests {
    private func written(_ id: RequestID) -> String {
        var out = ByteBuffer()
        out.writeHead(reserving: 64) { id.write(into: &$0) }
        return String(buffer: out)
    }

    @Test func aGeneratedIDIsItsPrefixAndCounterIn32HexDigits() {
        let id = RequestID(prefix: 0x0123_4567_89ab_cdef, counter: 0x2a)
        #expect(id.text == "0123456789abcdef000000000000002a")
        #expect(written(id) == id.text)
    }

    @Test func aGivenIDIsWrittenAsGiven() {
        let id = RequestID(given: "trace-7.a:b")
        #expect(id.text == "trace-7.a:b")
        #expect(written(id) == "trace-7.a:b")
    }

    @Test func aGeneratorCountsUpFromItsPrefix() {
        var random = SystemRandomNumberGenerator()
        var generator = RequestIDGenerator(using: &random)
        let first = generator.next().text
        let second = generator.next().text
        #expect(first.count == 32 && second.count == 32)
        #expect(first.prefix(16) == second.prefix(16))
        #expect(UInt64(first.suffix(16), radix: 16).map { $0 + 1 } == UInt64(second.suffix(16), radix: 16))
        #expect((first + second).allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }
}
