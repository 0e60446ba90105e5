import Testing

@testable import LoomFilters
@testable import LoomProxy

/// SNI certificate choice and the client identity loom forwards.
struct ServerNameTableTests {
    @Test func exactNamesThenOneLabelWildcards() {
        let table = ServerNameTable([(["a.test", "*.wild.test"], 1), (["*.a.test", "A.TEST", "b.test."], 2)])
        #expect(table.match("a.test") == 1 && table.match("A.Test.") == 1, "case and a trailing dot do not matter; the first entry keeps a name")
        #expect(table.match("x.wild.test") == 1)
        #expect(table.match("x.a.test") == 2 && table.match("b.test") == 2)
        #expect(table.match("wild.test") == nil && table.match("x.y.wild.test") == nil && table.match(".wild.test") == nil)
        #expect(table.match("c.test") == nil)
    }

    @Test func subjectsAreWrittenAsRFC4514() {
        #expect(ClientCertificate.subject([("C", "US"), ("O", "Loom"), ("CN", "alice")]) == "CN=alice,O=Loom,C=US")
        #expect(ClientCertificate.subject([("CN", "a,b+c\"d\\e<f>g;h")]) == #"CN=a\,b\+c\"d\\e\<f\>g\;h"#)
        #expect(ClientCertificate.subject([("CN", "#lead "), ("O", " x")]) == ##"O=\ x,CN=\#lead\ "##)
        #expect(ClientCertificate.subject([("CN", "evil\r\nX-Injected: 1")]) == #"CN=evil\0AX-Injected: 1"#, "no line break can reach a field value")
    }
}
