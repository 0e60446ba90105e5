import Testing
@testable import LoomConfig

/// Durations, sizes, addresses and spelling suggestions (DurationParser, ByteSizeParser,
/// AddressParser, Spelling).
struct ValueParserTests {
    @Test func goDurations() {
        #expect(DurationParser.parse("500ms") == .milliseconds(500))
        #expect(DurationParser.parse("30s") == .seconds(30))
        #expect(DurationParser.parse("1m30s") == .seconds(90))
        #expect(DurationParser.parse("2h") == .seconds(7200))
        #expect(DurationParser.parse("1h2m3s") == .seconds(3723))
        #expect(DurationParser.parse("1.5s") == .milliseconds(1500))
        #expect(DurationParser.parse("10us") == .microseconds(10))
        #expect(DurationParser.parse("0") == .zero)
        for bad in ["", "30", "-1s", "5 sec", "1y", "s", "1.2.3s", "99999999999h", "nan s"] {
            #expect(DurationParser.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func durationFormatting() {
        #expect(DurationParser.format(.seconds(90)) == "1m30s")
        #expect(DurationParser.format(.milliseconds(500)) == "500ms")
        #expect(DurationParser.format(.zero) == "0s")
        #expect(DurationParser.format(.seconds(3600)) == "1h")
    }

    @Test func sizes() {
        #expect(ByteSizeParser.parse("512") == 512)
        #expect(ByteSizeParser.parse("16KB") == 16 * 1024)
        #expect(ByteSizeParser.parse("16kib") == 16 * 1024)
        #expect(ByteSizeParser.parse("16 MB") == 16 << 20)
        #expect(ByteSizeParser.parse("1GB") == 1 << 30)
        #expect(ByteSizeParser.parse("2g") == 2 << 30)
        #expect(ByteSizeParser.parse("10b") == 10)
        for bad in ["", "-1", "1.5MB", "16QB", "MB", "99999999999999GB", "999999999999999999999"] {
            #expect(ByteSizeParser.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func listenAddresses() {
        #expect(AddressParser.listenAddress(":8080")! == (nil, 8080))
        #expect(AddressParser.listenAddress("0.0.0.0:80")! == ("0.0.0.0", 80))
        #expect(AddressParser.listenAddress("[::1]:443")! == ("::1", 443))
        for bad in ["8080", ":", "host:", ":http", "::1:80", "[::1:80", "a b:1"] {
            #expect(AddressParser.listenAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func endpoints() {
        #expect(AddressParser.endpoint("127.0.0.1:3000") == .tcp(host: "127.0.0.1", port: 3000))
        #expect(AddressParser.endpoint("[::1]:4000") == .tcp(host: "::1", port: 4000))
        #expect(AddressParser.endpoint("unix:/tmp/app.sock") == .unix(path: "/tmp/app.sock"))
        for bad in [":3000", "host", "unix:", "http://h:1"] {
            #expect(AddressParser.endpoint(bad) == nil, "\(bad)")
        }
    }

    /// One set of host rules for YAML endpoints, TOML `host` and simple mode's `*_TARGET_HOST`.
    @Test func hosts() {
        let good: [(String, String)] = [
            ("app", "app"), ("api.example.com", "api.example.com"), ("127.0.0.1", "127.0.0.1"), ("my_host-1", "my_host-1"),
            ("::1", "::1"), ("[::1]", "::1"), ("fe80::1%eth0", "fe80::1%eth0"), ("2001:db8::1", "2001:db8::1"),
        ]
        for (text, host) in good {
            #expect(AddressParser.host(text, allowBareIPv6: true) == .success(host), "\(text)")
        }
        let bad: [(String, AddressParser.HostProblem)] = [
            ("", .empty), ("127.0.0.1:3000", .port), ("localhost:80", .port), ("[::1]:80", .port),
            ("http://x", .scheme), ("https://app.example.com", .scheme),
            ("a b", .invalid), (" app", .invalid), ("app\t", .invalid), ("app/x", .invalid), ("user@app", .invalid),
            ("[app]", .invalid), ("[::1", .invalid), ("1:2:3", .invalid), ("host:", .invalid), ("a?b", .invalid),
        ]
        for (text, problem) in bad {
            #expect(AddressParser.host(text, allowBareIPv6: true) == .failure(problem), "\(text)")
        }
        // Inside "host:port", an IPv6 host needs its brackets.
        #expect(AddressParser.host("::1", allowBareIPv6: false) == .failure(.invalid))
        #expect(AddressParser.endpoint("[fe80::1%eth0]:80") == .tcp(host: "fe80::1%eth0", port: 80))
        for bad in ["[app]:80", "a\tb:80", "user@h:80", "[]:80"] {
            #expect(AddressParser.endpoint(bad) == nil, "\(bad)")
        }
    }

    @Test func suggestions() {
        #expect(Spelling.suggestion(for: "uptream", among: ["upstream", "host"]) == "upstream")
        #expect(Spelling.suggestion(for: "PORT", among: ["port"]) == "port")
        #expect(Spelling.suggestion(for: "foo", among: ["port", "host"]) == nil)
        #expect(Spelling.suggestion(for: "x", among: ["x"]) == nil)
        #expect(Spelling.editDistance("kitten", "sitting") == 3)
        #expect(Spelling.editDistance("", "abc") == 3)
    }
}
