import Testing

@testable import LoomProxy

@Suite struct HTTPDateTests {
    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),  // the RFC 9110 example
        (1_795_833_738, "Sat, 28 Nov 2026 02:42:18 GMT"),
    ])
    func formatsIMFFixdate(seconds: Int, expected: String) {
        #expect(HTTPDate.format(epochSeconds: seconds) == expected)
    }

    @Test func logTimestampsAreRFC3339UTC() {
        #expect(LoomLogHandler.format(epochSeconds: 784_111_777, milliseconds: 5) == "1994-11-06T08:49:37.005Z")
        #expect(LoomLogHandler.format(epochSeconds: 951_782_400, milliseconds: 999) == "2000-02-29T00:00:00.999Z")
    }
}
