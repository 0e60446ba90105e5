import Testing
@testable import LoomConfig

/// The validator on hand-built models: it must work without any source positions.
struct ConfigValidatorTests {
    @Test func worksWithoutLocations() {
        let config = LoomConfiguration(
            origin: .environment,
            listeners: [ListenerConfig(name: "a", port: 80), ListenerConfig(name: "b", host: "127.0.0.1", port: 80)],
            upstreams: [UpstreamConfig(name: "u", endpoints: [])],
            routes: [RouteConfig(name: "r", action: .proxy(upstream: "v"), stripPrefix: true)]
        )
        let messages = ConfigValidator.validate(config, sourceMap: ConfigSourceMap(file: "mem")).map(\.description)
        #expect(messages == [
            "mem: port 80 is already used by listener \"a\"",
            "mem: upstream \"u\" has no endpoints",
            "mem: unknown upstream \"v\"",
            "mem: strip_prefix needs a prefix path (\"/x/*\", \"/x/{id}/*\" or path_prefix)",
        ])
    }

    @Test func differentHostsOnOnePortDoNotClash() {
        let config = LoomConfiguration(
            origin: .environment,
            listeners: [ListenerConfig(name: "a", host: "127.0.0.1", port: 80), ListenerConfig(name: "b", host: "10.0.0.1", port: 80)],
            routes: [RouteConfig(name: "r", action: .respond(StaticResponse()))]
        )
        #expect(ConfigValidator.validate(config, sourceMap: ConfigSourceMap(file: "mem")).isEmpty)
    }

    @Test func everyPlannedFeatureIsUnsupported() {
        var config = LoomConfiguration(origin: .environment, routes: [RouteConfig(name: "r", action: .respond(StaticResponse()))])
        config.planned = PlannedFeatures(acme: ACMESettings(enabled: true), cache: CacheSettings(), postgres: PostgresSettings(url: "pg"), sections: [PlannedSection(path: "cors", feature: "CORS")])
        let diagnostics = ConfigValidator.validate(config, sourceMap: ConfigSourceMap(file: "mem"))
        #expect(diagnostics.count == 4)
        #expect(diagnostics.allSatisfy { $0.severity == .unsupported })
    }

    @Test func disabledACMEIsFine() {
        var config = LoomConfiguration(origin: .environment, routes: [RouteConfig(name: "r", action: .respond(StaticResponse()))])
        config.planned.acme = ACMESettings(enabled: false)
        #expect(ConfigValidator.validate(config, sourceMap: ConfigSourceMap(file: "mem")).isEmpty)
    }
}
