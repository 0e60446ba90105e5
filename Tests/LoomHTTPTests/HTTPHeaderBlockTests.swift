import NIOCore
import Testing
@testable import LoomHTTP

/// Header block accessors: case-insensitive lookup without allocation, verbatim forwarding,
/// and the character classes the parser relies on.
@Suite struct HTTPHeaderBlockTests {
    func block() throws -> HTTPHeaderBlock {
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For:  1.2.3.4 \r\nx-forwarded-for: 5.6.7.8\r\nAccept:\r\n\r\n")
        var parser = HTTP1HeadParser()
        return try #require(try parser.parseRequestHead(&buffer)).headers
    }

    /// Kept fields come out as `Name: value` CRLF whatever their received whitespace, and
    /// skipping a field never glues its neighbours' bytes together.
    @Test(arguments: [
        (Set<Int>(), ""),
        (Set([0, 1, 2, 3, 4]), "Host: a\r\nX-A: 1\r\nX-B: two words\r\nX-C: 3\r\nAccept: \r\n"),
        (Set([1, 3]), "X-A: 1\r\nX-C: 3\r\n"),
        (Set([0, 2, 3]), "Host: a\r\nX-B: two words\r\nX-C: 3\r\n"),
        (Set([2, 4]), "X-B: two words\r\nAccept: \r\n"),
    ])
    func writeFieldsCopiesRunsAndNormalisesTheRest(keep: Set<Int>, expected: String) throws {
        // Fields 0, 1 and 3 are canonical; 2 has extra whitespace, 4 none after the colon.
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B:\t two words  \r\nX-C: 3\r\nAccept:\r\n\r\n")
        var parser = HTTP1HeadParser()
        let headers = try #require(try parser.parseRequestHead(&buffer)).headers
        var out = ByteBuffer()
        var asked: [Int] = []
        out.writeHead(reserving: 64) { out in
            asked = []  // per run of the writer
            headers.writeFields(into: &out) { index in
                asked.append(index)
                return keep.contains(index)
            }
        }
        #expect(String(buffer: out) == expected)
        #expect(asked == [0, 1, 2, 3, 4])
    }

    @Test func accessors() throws {
        let headers = try block()
        #expect(headers.count == 4)
        #expect(headers.name(at: 1) == "X-Forwarded-For")
        #expect(headers.value(at: 1) == "1.2.3.4")
        #expect(headers.name(at: 1, equals: "x-forwarded-for"))
        #expect(headers.name(at: 2, equals: "x-forwarded-for"))
        #expect(!headers.name(at: 0, equals: "hos"))
        #expect(!headers.name(at: 0, equals: "hosts"))
        #expect(headers.firstValue(named: "x-forwarded-for") == "1.2.3.4")
        #expect(headers.firstIndex(named: "accept") == 3)
        #expect(headers.value(at: 3) == "")
        #expect(headers.contains("host"))
        #expect(!headers.contains("cookie"))
        #expect(headers.firstValue(named: "cookie") == nil)
    }

    @Test func writeFieldKeepsNameCase() throws {
        let headers = try block()
        var out = ByteBuffer()
        out.writeHead(reserving: 64) { out in
            for i in 0..<headers.count { headers.writeField(at: i, into: &out) }
        }
        #expect(String(buffer: out) == "Host: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\nAccept: \r\n")
    }

    @Test func startLineLength() throws {
        let headers = try block()
        #expect(headers.startLineLength == "GET / HTTP/1.1\r\n".utf8.count)
    }

    @Test func handBuiltBlock() {
        var bytes = ByteBuffer(string: "xxA: b\r\n\r\n")
        bytes.moveReaderIndex(forwardBy: 2)
        let headers = HTTPHeaderBlock(bytes: bytes, fields: [HTTPFieldRange(nameStart: 0, nameLength: 1, valueStart: 3, valueLength: 1)])
        #expect(headers.bytes.readerIndex == 0)
        #expect(headers.name(at: 0) == "A")
        #expect(headers.value(at: 0) == "b")
    }

    @Test func characterClassesMatchTheGrammar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        let hostChar = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%".utf8)
        for b in UInt8.min...UInt8.max {
            #expect(HTTPSyntax.isToken(b) == tchar.contains(b), "token \(b)")
            #expect(HTTPSyntax.isHostChar(b) == hostChar.contains(b), "host \(b)")
            #expect(HTTPSyntax.isFieldValueChar(b) == (b == 9 || (b >= 0x20 && b != 0x7F)), "value \(b)")
        }
    }
}
