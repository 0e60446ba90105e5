import NIOCore
import LoomTestSupport
import Testing

@testable import LoomProxy

/// The per-loop timing wheel, driven with explicit times.
@Suite struct TimerWheelTests {
    final class Owner: TimerWheelOwner {
        let name: String
        var timerSlot: TimerWheelSlot?
        init(_ name: String) { self.name = name }
    }

    static func at(_ ms: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(ms) * 1_000_000) }

    /// 10 ms ticks, 8 buckets (one revolution = 80 ms), starting at 1 s.
    static func wheel() -> TimerWheel<Owner> {
        TimerWheel(resolution: .milliseconds(10), buckets: 8, now: at(1000))
    }

    static func names(_ owners: [Owner]) -> [String] { owners.map(\.name).sorted() }

    @Test func firesAtTheFirstTickAtOrAfterTheDeadlineNeverBefore() {
        var wheel = Self.wheel()
        let a = Owner("a")
        let wake = wheel.schedule(a, at: Self.at(1025))
        #expect(wake == Self.at(1030))
        #expect(wheel.advance(to: Self.at(1024)).isEmpty)
        #expect(wheel.advance(to: Self.at(1029)).isEmpty)
        #expect(Self.names(wheel.advance(to: Self.at(1030))) == ["a"])
        #expect(a.timerSlot == nil)
        #expect(wheel.count == 0)
        #expect(wheel.nextWake == nil)
    }

    @Test func deadlinesBeyondOneRevolutionWaitForTheirOwnTurn() {
        var wheel = Self.wheel()
        // 1015 and 1095 share a bucket (ticks 102 and 110, 8 buckets apart).
        wheel.schedule(Owner("near"), at: Self.at(1015))
        wheel.schedule(Owner("far"), at: Self.at(1095))
        #expect(Self.names(wheel.advance(to: Self.at(1020))) == ["near"])
        #expect(wheel.nextWake == Self.at(1100))
        #expect(wheel.advance(to: Self.at(1099)).isEmpty)
        #expect(Self.names(wheel.advance(to: Self.at(1100))) == ["far"])
    }

    @Test func reschedulingMovesTheEntryAndRemovingForgetsIt() {
        var wheel = Self.wheel()
        let a = Owner("a")
        let b = Owner("b")
        wheel.schedule(a, at: Self.at(1020))
        wheel.schedule(b, at: Self.at(1020))
        wheel.schedule(a, at: Self.at(1050))
        #expect(wheel.count == 2)
        #expect(Self.names(wheel.advance(to: Self.at(1040))) == ["b"])
        wheel.remove(a)
        wheel.remove(a)  // twice is harmless
        #expect(wheel.count == 0)
        #expect(wheel.advance(to: Self.at(2000)).isEmpty)
    }

    @Test func swapRemovalKeepsEveryOtherEntryFindable() {
        var wheel = Self.wheel()
        let owners = (0..<6).map { Owner("o\($0)") }
        for owner in owners { wheel.schedule(owner, at: Self.at(1010)) }
        wheel.remove(owners[1])
        wheel.remove(owners[0])
        wheel.remove(owners[4])
        #expect(Self.names(wheel.advance(to: Self.at(1010))) == ["o2", "o3", "o5"])
    }

    @Test func aDeadlineAlreadyPassedFiresAtTheNextTick() {
        var wheel = Self.wheel()
        _ = wheel.advance(to: Self.at(1100))
        let wake = wheel.schedule(Owner("late"), at: Self.at(1000))
        #expect(wake == Self.at(1110))
        #expect(Self.names(wheel.advance(to: Self.at(1110))) == ["late"])
    }

    @Test func aLongPauseExaminesEveryBucketOnce() {
        var wheel = Self.wheel()
        for ms in stride(from: 1010, through: 1300, by: 10) { wheel.schedule(Owner("\(ms)"), at: Self.at(Int64(ms))) }
        #expect(wheel.advance(to: Self.at(5000)).count == 30)
        #expect(wheel.count == 0)
    }

    /// Random schedules, moves and removals against a plain list of deadlines.
    @Test func agreesWithAReferenceModel() {
        var random = SplitMix64(state: 7)
        var wheel = Self.wheel()
        let owners = (0..<40).map { Owner("\($0)") }
        // Per owner: its deadline, and the first tick at which the wheel may fire it (the
        // tick of the deadline, or the next tick for a deadline already passed).
        var model: [String: (deadline: Int64, tick: Int64)] = [:]
        var now: Int64 = 1000
        for _ in 0..<5000 {
            let owner = owners[Int.random(in: 0..<owners.count, using: &random)]
            switch Int.random(in: 0..<4, using: &random) {
            case 0, 1:
                let deadline = now + Int64.random(in: -5...300, using: &random)
                wheel.schedule(owner, at: Self.at(deadline))
                model[owner.name] = (deadline, max((deadline + 9) / 10, now / 10 + 1))
            case 2:
                wheel.remove(owner)
                model[owner.name] = nil
            default:
                now += Int64.random(in: 0...40, using: &random)
                let fired = Self.names(wheel.advance(to: Self.at(now)))
                // Never early, and never later than its tick.
                #expect(fired == model.filter { $0.value.tick <= now / 10 }.keys.sorted())
                #expect(fired.allSatisfy { model[$0]!.deadline <= now })
                for name in fired { model[name] = nil }
            }
            #expect(wheel.count == model.count)
        }
    }
}
