import Testing

@testable import LoomConfig

@Suite struct AddressBlockTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.1.2.3", true), ("10.0.0.0/8", "11.0.0.1", false),
        ("127.0.0.1", "127.0.0.1", true), ("127.0.0.1", "127.0.0.2", false),
        ("192.168.1.0/25", "192.168.1.127", true), ("192.168.1.0/25", "192.168.1.128", false),
        ("::1", "::1", true), ("fd00::/8", "fd12::1", true), ("fd00::/8", "fe80::1", false),
        ("10.0.0.0/8", "::ffff:10.9.9.9", true), ("0.0.0.0/0", "8.8.8.8", true),
    ])
    func containment(block: String, address: String, expected: Bool) throws {
        let parsed = try #require(AddressBlock(block))
        let bytes = try #require(AddressBlock.addressBytes(address))
        #expect(parsed.contains(bytes) == expected)
    }

    @Test(arguments: ["", "10.0.0.0/33", "::1/129", "10.0.0/8", "example.com", "10.0.0.0/", "1.2.3.4/8/9", "10.0.0.0/-1"])
    func rejectsInvalidText(text: String) {
        #expect(AddressBlock(text) == nil)
    }

    @Test func invalidEntriesAreReportedAtTheirPosition() {
        let result = TestSupport.yaml("""
            server:
              forwarding:
                trusted_proxies: ["10.0.0.0/8", "10.0.0.0/40", "proxy.local"]
            """)
        #expect(result.problems.filter { $0.contains("trusted_proxies") } == [
            "t.yaml:3:37 server.forwarding.trusted_proxies[1]: invalid address or CIDR block \"10.0.0.0/40\" (use e.g. \"10.0.0.0/8\" or \"::1\")",
            "t.yaml:3:52 server.forwarding.trusted_proxies[2]: invalid address or CIDR block \"proxy.local\" (use e.g. \"10.0.0.0/8\" or \"::1\")",
        ])
    }
}
