import LoomConfig
import NIOEmbedded
import Testing

@testable import LoomProxy

/// A loop finds an upstream's state and pools by the upstream's position in its snapshot
/// (`LoopContext.state(of:)`, `pool(of:endpoint:)`): the same ones the keyed lookups give,
/// whichever snapshot's upstream asks, and never a pool a reload dropped.
@Suite struct LoopUpstreamSlotsTests {
    static func upstream(_ name: String, ports: [Int], position: Int = 0, previous: ProxySnapshot.Upstream? = nil) -> ProxySnapshot.Upstream {
        let config = UpstreamConfig(name: name, endpoints: ports.map { .tcp(host: "127.0.0.1", port: $0) })
        return ProxySnapshot.Upstream(config, position: position, previous: previous)
    }

    @Test func theSlotGivesWhatTheKeyedLookupsGive() throws {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let upstream = Self.upstream("a", ports: [1001, 1002], position: 2)
        let state = loop.state(of: upstream)
        #expect(loop.state(of: upstream) === state)
        let pool = try loop.pool(of: upstream, endpoint: 1)
        #expect(try loop.pool(of: upstream, endpoint: 1) === pool)
        #expect(loop.pool(for: upstream.endpoints[1], settings: upstream.pool) === pool)
        #expect(try loop.pool(of: upstream, endpoint: 0) !== pool)
    }

    @Test func upstreamsOfOtherSnapshotsAtOnePositionEachGetTheirOwn() throws {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let a = Self.upstream("a", ports: [1001])
        let b = Self.upstream("b", ports: [2001])
        let stateA = loop.state(of: a), poolA = try loop.pool(of: a, endpoint: 0)
        let stateB = loop.state(of: b), poolB = try loop.pool(of: b, endpoint: 0)
        #expect(stateA !== stateB && poolA !== poolB)
        // Taking the slot back and forth finds the same ones again.
        #expect(loop.state(of: a) === stateA)
        #expect(try loop.pool(of: a, endpoint: 0) === poolA)
        #expect(loop.state(of: b) === stateB)
        #expect(try loop.pool(of: b, endpoint: 0) === poolB)
    }

    @Test func aReloadedUpstreamKeepsItsStateAndItsKeptEndpointsPools() throws {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let before = Self.upstream("a", ports: [1001, 1002])
        let state = loop.state(of: before)
        let kept = try loop.pool(of: before, endpoint: 0)
        let after = Self.upstream("a", ports: [1001], previous: before)
        loop.reconcilePools(with: [after], previous: [before])
        #expect(loop.state(of: after) === state)
        #expect(try loop.pool(of: after, endpoint: 0) === kept)
    }

    @Test func aPoolAReloadDroppedIsNotFoundInTheSlot() throws {
        let loop = LoopContext(eventLoop: EmbeddedEventLoop())
        let before = Self.upstream("a", ports: [1001, 1002])
        let dropped = try loop.pool(of: before, endpoint: 1)
        let after = Self.upstream("a", ports: [1001], previous: before)
        loop.reconcilePools(with: [after], previous: [before])
        #expect(dropped.retired)
        // A request that began before the reload still goes to the removed endpoint: through
        // a pool of its own that keeps nothing, made anew each time, as the keyed lookup does.
        let late = try loop.pool(of: before, endpoint: 1)
        #expect(late !== dropped && late.retired)
        #expect(try loop.pool(of: before, endpoint: 1) !== late)
    }
}
