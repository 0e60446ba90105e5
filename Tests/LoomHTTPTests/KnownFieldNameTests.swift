import NIOCore
import Testing
@testable import LoomHTTP

/// Recognising the special field names from raw bytes, and writing decimals without strings.
@Suite struct KnownFieldNameTests {
    static let names: [(String, KnownFieldName)] = [
        ("te", .te), ("via", .via), ("host", .host), ("date", .date), ("expect", .expect), ("upgrade", .upgrade),
        ("forwarded", .forwarded), ("connection", .connection), ("keep-alive", .keepAlive),
        ("content-length", .contentLength), ("x-forwarded-for", .xForwardedFor), ("x-forwarded-host", .xForwardedHost),
        ("x-forwarded-port", .xForwardedPort), ("proxy-connection", .proxyConnection),
        ("transfer-encoding", .transferEncoding), ("x-forwarded-proto", .xForwardedProto),
    ]

    /// A one-field block built by hand, so no parser rule stands between the name and the test.
    static func known(_ name: String) -> KnownFieldName? {
        let length = Int32(name.utf8.count)
        let field = HTTPFieldRange(nameStart: 0, nameLength: length, valueStart: length + 2, valueLength: 1)
        return HTTPHeaderBlock(bytes: ByteBuffer(string: "\(name): v\r\n"), fields: [field]).knownName(at: 0)
    }

    @Test func everyNameIsRecognisedInAnyCase() {
        for (name, expected) in Self.names {
            #expect(Self.known(name) == expected, "\(name)")
            #expect(Self.known(name.uppercased()) == expected, "\(name)")
        }
    }

    /// Same length, one byte off, prefixes and extensions: all ordinary fields.
    @Test(arguments: ["hosts", "hos", "xost", "content-lengtj", "x-forwarded-fo", "x-forwarded-form", "accept", "cookie"])
    func otherNamesAreNotKnown(name: String) {
        #expect(Self.known(name) == nil)
    }

    @Test func hopByHopFieldsAreTheConnectionSpecificOnes() {
        let hopByHop = Self.names.filter { $0.1.isHopByHop }.map(\.0).sorted()
        #expect(hopByHop == ["connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"])
    }
}
