import Testing
@testable import LoomConfig

/// The TOML position scanner that gives diagnostics their line:column.
struct TOMLPositionIndexTests {
    func at(_ line: Int, _ column: Int) -> LoomConfig.SourceLocation { LoomConfig.SourceLocation(file: "x.toml", line: line, column: column) }

    @Test func tablesArraysOfTablesAndDottedKeys() {
        let index = TOMLPositionIndex(source: """
            top = 1 # comment with = and [brackets]
            [server]
              http_port = 80
            [upstreams.rails]
            process.command = "bundle"
            process.env = { RAILS_ENV = "production", PORT = "3000" }
            [[upstreams.rails.instances]]
            socket = "/a"
            [[upstreams.rails.instances]]
            socket = "/b"
            [[routes]]
            upstream = "a"
            [[routes]]
            "quoted key" = 'x'
            [routes.extra]
            k = 1
            """, file: "x.toml")
        #expect(index.keys["top"] == at(1, 1))
        #expect(index.values["top"] == at(1, 7))
        #expect(index.keys["server"] == at(2, 1))
        #expect(index.keys["server.http_port"] == at(3, 3))
        #expect(index.values["server.http_port"] == at(3, 15))
        #expect(index.keys["upstreams"] == at(4, 1))
        #expect(index.keys["upstreams.rails"] == at(4, 1))
        #expect(index.keys["upstreams.rails.process"] == at(5, 1))
        #expect(index.keys["upstreams.rails.process.command"] == at(5, 1))
        #expect(index.keys["upstreams.rails.process.env.RAILS_ENV"] == at(6, 17))
        #expect(index.keys["upstreams.rails.process.env.PORT"] == at(6, 43))
        #expect(index.values["upstreams.rails.process.env.PORT"] == at(6, 50))
        #expect(index.keys["upstreams.rails.instances"] == at(7, 1))
        #expect(index.keys["upstreams.rails.instances[0]"] == at(7, 1))
        #expect(index.keys["upstreams.rails.instances[1].socket"] == at(10, 1))
        #expect(index.keys["routes[0].upstream"] == at(12, 1))
        #expect(index.keys["routes[1]"] == at(13, 1))
        #expect(index.keys["routes[1].quoted key"] == at(14, 1))
        #expect(index.keys["routes[1].extra.k"] == at(16, 1))
    }

    @Test func multiLineArraysOfInlineTables() {
        let index = TOMLPositionIndex(source: """
            add_headers = [
              { name = "X-A", value = "]}," }, # tricky
              { name = 'X-B', value = \"\"\"multi
            line = not a key
            \"\"\" },
            ]
            after = true
            """, file: "x.toml")
        #expect(index.keys["add_headers[0]"] == at(2, 3))
        #expect(index.keys["add_headers[0].value"] == at(2, 19))
        #expect(index.keys["add_headers[1].name"] == at(3, 5))
        #expect(index.keys["add_headers[1].value"] == at(3, 19))
        #expect(index.keys["line"] == nil)
        #expect(index.keys["after"] == at(7, 1))
    }

    @Test func neverHangsOnGarbage() {
        for text in ["[", "[[a", "= = =", "a = [1, {", "\"unterminated", "a.b. = 1", "x = '''never closed"] {
            _ = TOMLPositionIndex(source: text, file: "x.toml")
        }
    }
}
