import LoomConfig
import Testing

@testable import LoomWasm

/// The pure pieces of the Proxy-Wasm host: the header-map wire format, the map plugins edit,
/// the configuration text, shared data with CAS, and metrics.
@Suite struct HostStateTests {
    @Test func headerMapsRoundTripInTheSpecsFormat() throws {
        let encoded = HeaderMapCodec.encode([("a", "1"), ("b", "22")])
        #expect(encoded == [2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x61, 0, 0x31, 0, 0x62, 0, 0x32, 0x32, 0])
        let decoded = try #require(HeaderMapCodec.decode(encoded))
        #expect(decoded.map { "\($0.name)=\($0.value)" } == ["a=1", "b=22"])
        #expect(HeaderMapCodec.decode([])?.isEmpty == true)
        #expect(HeaderMapCodec.decode([0])?.isEmpty == true, "SDKs send a single NUL for an empty map")
    }

    @Test func malformedHeaderMapsAreRefusedNotTrusted() {
        // A count far beyond what the bytes hold, lengths running past the end, a missing NUL.
        #expect(HeaderMapCodec.decode([0xFF, 0xFF, 0xFF, 0x7F, 0, 0]) == nil)
        #expect(HeaderMapCodec.decode([1, 0, 0, 0, 200, 0, 0, 0, 1, 0, 0, 0, 0x61, 0, 0x31, 0]) == nil)
        #expect(HeaderMapCodec.decode([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x61, 0x62, 0x31, 0]) == nil)
        #expect(HeaderMapCodec.decode([1, 0, 0]) == nil)
    }

    @Test func headerMapEditsKeepOrderAndJoinRepeatedValues() {
        var map = HeaderMap([(":path", "/"), ("Accept", "a"), ("X-A", "1"), ("accept", "b")])
        #expect(map.value("accept") == "a,b")
        map.replace("ACCEPT", "c")
        #expect(map.pairs.map(\.name) == [":path", "accept", "x-a"] && map.value("accept") == "c")
        map.add("x-a", "2")
        map.remove("X-A")
        #expect(map.value("x-a") == nil && map.regular.map(\.name) == ["accept"])
        map.replace("new", "v")
        #expect(map.pairs.last == HeaderMap.Pair(name: "new", value: "v"))
    }

    @Test func fieldsPluginsSetAreCheckedBeforeLoomWritesThem() {
        #expect(PluginVM.isValidField("x-a", "value with spaces"))
        #expect(PluginVM.isValidField(":path", "/x"))
        #expect(!PluginVM.isValidField("x-a", "a\r\nx-b: 1"))
        #expect(!PluginVM.isValidField("x a", "v"))
        #expect(!PluginVM.isValidField("", "v"))
        #expect(!PluginVM.isValidField("x-a", "nul\u{0}"))
    }

    @Test func configurationMapsBecomeJSON() {
        let value = OpaqueValue.map([
            .init(key: "name", value: .string("a \"quoted\"\nline")), .init(key: "n", value: .integer(3)),
            .init(key: "list", value: .list([.bool(true), .null, .number(0.5)])),
        ])
        #expect(PluginConfigText.render(value) == #"{"name":"a \"quoted\"\nline","n":3,"list":[true,null,0.5]}"#)
        #expect(PluginConfigText.render(.string("raw text")) == "raw text")
        #expect(PluginConfigText.render(nil) == "")
    }

    @Test func sharedDataCompareAndSwap() throws {
        let state = PluginSharedState.forPlugin("cas-\(UInt64.random(in: 0 ... .max))")
        #expect(state.get("k") == nil)
        #expect(state.set("k", [1], cas: 0) == .ok)
        let (value, cas) = try #require(state.get("k"))
        #expect(value == [1])
        #expect(state.set("k", [2], cas: cas) == .ok)
        #expect(state.set("k", [3], cas: cas) == .casMismatch, "a stale token is CAS_MISMATCH")
        #expect(state.get("k")?.value == [2])
        #expect(state.set("k", [4], cas: 0) == .ok, "no token: unconditional")
        #expect(state.set("new", [5], cas: 99) == .ok, "a key not there takes any token, as in Envoy")
    }

    @Test func metricsByType() {
        let metrics = PluginMetrics()
        let counter = metrics.define("requests", type: .counter)
        let gauge = metrics.define("open", type: .gauge)
        let histogram = metrics.define("latency", type: .histogram)
        #expect(counter == 1 && gauge == 2 && histogram == 3)
        #expect(metrics.define("requests", type: .counter) == 1, "defining again returns the same id")
        #expect(metrics.define("requests", type: .gauge) == nil)
        #expect(metrics.apply(.increment(2), to: 1) && !metrics.apply(.increment(-1), to: 1))
        #expect(metrics.apply(.increment(-3), to: 2) && metrics.value(2) == -3)
        #expect(metrics.apply(.record(7), to: 3) && !metrics.apply(.increment(1), to: 3) && metrics.value(3) == nil)
        #expect(!metrics.apply(.record(1), to: 9))
        #expect(metrics.value(1) == 2)
    }

    @Test func propertyPathsAreNULSeparated() {
        #expect(PluginProperties.path(Array("request\u{0}path".utf8)) == "request.path")
        #expect(PluginProperties.path(Array("plugin_name\u{0}".utf8)) == "plugin_name")
    }
}
