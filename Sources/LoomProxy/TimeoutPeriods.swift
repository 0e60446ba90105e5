import LoomConfig
import NIOCore

/// A set of `Timeouts` with the periods the deadlines are armed with already converted to
/// `TimeAmount`, once per snapshot rather than per request.
///
/// Why: a `Duration` holds 128-bit attoseconds, so turning one into nanoseconds is a 128-bit
/// division and multiplication, and every request arms three or four deadlines
/// (`DownstreamHandler+Timers`). The configured values stay alongside, for what reads them
/// as durations: the connect timeout, messages and `explain`.
struct TimeoutPeriods: Sendable {
    /// The configured values these periods were converted from.
    let configured: Timeouts
    let responseHeader: TimeAmount
    let idle: TimeAmount
    /// nil: no whole-request limit.
    let request: TimeAmount?
    let requestHeader: TimeAmount
    let tunnel: TimeAmount

    init(_ timeouts: Timeouts) {
        configured = timeouts
        responseHeader = TimeAmount(timeouts.responseHeader)
        idle = TimeAmount(timeouts.idle)
        request = timeouts.request.map(TimeAmount.init)
        requestHeader = TimeAmount(timeouts.requestHeader)
        tunnel = TimeAmount(timeouts.tunnel)
    }
}
