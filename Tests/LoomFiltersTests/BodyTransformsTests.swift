import LoomConfig
import LoomFilters
import NIOCore
import Testing

/// A body's transforms in order: each one's output is the next one's input, and a transform
/// that holds the end (its last bytes or the trailers) stops the rest until resumed.
struct BodyTransformsTests {
    /// Appends its tag to every chunk and trailer section; holds what `holds` says.
    final class Tagging: BodyTransform {
        let tag: String
        let holds: Hold?
        enum Hold { case bodyEnd, trailers }

        init(_ tag: String, holds: Hold? = nil) {
            self.tag = tag
            self.holds = holds
        }

        func transform(_ chunk: ByteBuffer, endOfStream: Bool) throws -> ByteBuffer {
            if endOfStream, holds == .bodyEnd { throw BodyEndHold { _ in } }
            return ByteBuffer(string: String(buffer: chunk) + tag)
        }

        func trailers(_ fields: [HeaderPair]) throws -> [HeaderPair] {
            if holds == .trailers { throw TrailersHold { _ in } }
            return fields + [HeaderPair(name: "x-seen", value: tag)]
        }
    }

    static func transforms(_ list: Tagging...) -> BodyTransforms {
        var transforms = BodyTransforms()
        for transform in list { transforms.append(transform) }
        return transforms
    }

    @Test func eachOutputFeedsTheNext() throws {
        let transforms = Self.transforms(Tagging("a"), Tagging("b"))
        #expect(try String(buffer: transforms.run(ByteBuffer(string: "x"), endOfStream: false).get()) == "xab")
        #expect(try transforms.run(trailers: []).get().map(\.value) == ["a", "b"])
    }

    @Test func aHeldBodyEndStopsTheRestUntilResumed() throws {
        let transforms = Self.transforms(Tagging("a"), Tagging("b", holds: .bodyEnd), Tagging("c"))
        guard case .failure(.held(let index, _)) = transforms.run(ByteBuffer(string: "x"), endOfStream: true) else {
            Issue.record("not held")
            return
        }
        #expect(index == 1)
        #expect(try String(buffer: transforms.resume(at: index, with: .success(ByteBuffer(string: "late"))).get()) == "latec")
    }

    @Test func heldTrailersStopTheRestUntilResumed() throws {
        let transforms = Self.transforms(Tagging("a"), Tagging("b", holds: .trailers), Tagging("c"))
        guard case .failure(.trailersHeld(let index, _)) = transforms.run(trailers: [HeaderPair(name: "x-in", value: "1")]) else {
            Issue.record("not held")
            return
        }
        #expect(index == 1)
        let resumed = try transforms.resume(trailersAt: index, with: .success([HeaderPair(name: "x-in", value: "2")])).get()
        #expect(resumed.map(\.value) == ["2", "c"], "only the transforms after the one that held run")

        struct Broken: Error {}
        guard case .failure(.failed(let failure)) = transforms.resume(trailersAt: index, with: .failure(Broken())) else {
            Issue.record("a failed finish is not a failure")
            return
        }
        #expect(failure.phase == "trailers")
    }
}
