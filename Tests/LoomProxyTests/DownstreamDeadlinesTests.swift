import NIOCore
import Testing

@testable import LoomProxy

/// Which of a connection's deadlines is due, in what order, without a clock.
@Suite struct DownstreamDeadlinesTests {
    static func at(_ s: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(s) * 1_000_000_000) }

    @Test func earliestIsTheFirstOfAllSetDeadlines() {
        var deadlines = DownstreamDeadlines()
        #expect(deadlines.earliest == nil)
        deadlines.keepAlive = Self.at(60)
        deadlines.responseHeader = Self.at(30)
        deadlines.idleTimeout = .seconds(5)
        deadlines.lastActivity = Self.at(40)
        #expect(deadlines.earliest == Self.at(30))
        deadlines.responseHeader = nil
        #expect(deadlines.earliest == Self.at(45))  // idle counts from the last activity
        deadlines.exchangeEnded()
        #expect(deadlines.earliest == Self.at(60))
    }

    @Test func eachDeadlineFiresOnceThenIsCleared() {
        var deadlines = DownstreamDeadlines()
        deadlines.requestHeader = Self.at(10)
        #expect(deadlines.takeDue(at: Self.at(9), idleSuspended: false) == nil)
        #expect(deadlines.takeDue(at: Self.at(10), idleSuspended: false) == .requestHeader)
        #expect(deadlines.takeDue(at: Self.at(11), idleSuspended: false) == nil)
        #expect(deadlines.earliest == nil)
    }

    /// When several are due at one wake, the exchange's own verdicts come first: a total
    /// timeout is reported as such even if the response-header one passed too.
    @Test func severalDueAreTakenInPriorityOrder() {
        var deadlines = DownstreamDeadlines()
        deadlines.keepAlive = Self.at(1)
        deadlines.stall = Self.at(1)
        deadlines.linger = Self.at(1)
        deadlines.requestHeader = Self.at(1)
        deadlines.idleTimeout = .seconds(1)
        deadlines.lastActivity = Self.at(0)
        deadlines.responseHeader = Self.at(1)
        deadlines.request = Self.at(1)
        var order: [DownstreamDeadlines.Kind] = []
        while let due = deadlines.takeDue(at: Self.at(2), idleSuspended: false) { order.append(due) }
        #expect(order == [.request, .responseHeader, .exchangeIdle, .requestHeader, .stall, .linger, .keepAlive])
    }

    /// Connecting or waiting for the response head: the idle period starts over instead of
    /// firing, so the idle timeout never cuts those shorter than their own timeouts.
    @Test func suspendedIdleStartsOver() {
        var deadlines = DownstreamDeadlines()
        deadlines.idleTimeout = .seconds(5)
        deadlines.lastActivity = Self.at(0)
        #expect(deadlines.takeDue(at: Self.at(5), idleSuspended: true) == nil)
        #expect(deadlines.earliest == Self.at(10))
        #expect(deadlines.takeDue(at: Self.at(10), idleSuspended: false) == .exchangeIdle)
        #expect(deadlines.earliest == nil)
    }

    @Test func activityPushesTheIdleDeadline() {
        var deadlines = DownstreamDeadlines()
        deadlines.idleTimeout = .seconds(5)
        deadlines.lastActivity = Self.at(0)
        deadlines.lastActivity = Self.at(3)
        #expect(deadlines.takeDue(at: Self.at(5), idleSuspended: false) == nil)
        #expect(deadlines.earliest == Self.at(8))
    }
}
