import Testing
@testable import LoomConfig

@Suite struct WatchSettingsTests {
    @Test func defaultsWatchEverySecond() throws {
        let server = try #require(TestSupport.yaml("routes: []").configuration).server
        #expect(server.watchConfig)
        #expect(server.watchInterval == .seconds(1))
    }

    @Test func bothDialectsReadTheSameKeys() throws {
        let yaml = try #require(TestSupport.yaml("server:\n  watch_config: false\n  watch_interval: 250ms\n").configuration).server
        let toml = try #require(TestSupport.toml("[server]\nwatch_config = false\nwatch_interval = \"250ms\"\n").configuration).server
        for server in [yaml, toml] {
            #expect(!server.watchConfig)
            #expect(server.watchInterval == .milliseconds(250))
        }
    }

    @Test func intervalOutsideItsRangeIsAnError() {
        #expect(TestSupport.yaml("server:\n  watch_interval: 10ms\n").messages.contains { $0.contains("server.watch_interval: must be between 100ms and 1h") })
    }
}
