import NIOCore

/// The deadlines one downstream connection watches, and which of them is due.
///
/// Pure: the handler sets and clears deadlines as its state changes (a field store each) and,
/// when its entry in the loop's `TimerWheel` fires, asks what is due
/// (`DownstreamHandler+Timers`). Connection deadlines: keep-alive (no request started: close
/// quietly), request header (a head started but not finished: 408), stall (the client takes
/// none of our bytes: close) and linger (our FIN is sent: close the socket). Exchange
/// deadlines: the total request timeout, the response header (the request is upstream, no
/// response head yet: 504), the attempt's per-try timeout, the end of a retry's backoff, and
/// idle (no byte either way for the idle timeout).
struct DownstreamDeadlines: Equatable {
    enum Kind: Equatable {
        case request, responseHeader, perTry, retry, exchangeIdle, requestHeader, stall, linger, keepAlive
    }

    var keepAlive: NIODeadline?
    var requestHeader: NIODeadline?
    var stall: NIODeadline?
    var linger: NIODeadline?
    var request: NIODeadline?
    var responseHeader: NIODeadline?
    /// The current attempt's `retry.per_try_timeout` for its response head.
    var perTry: NIODeadline?
    /// The end of a retry's backoff: the next attempt starts then.
    var retry: NIODeadline?
    /// The exchange's idle timeout, counted from `lastActivity`; nil between exchanges.
    var idleTimeout: TimeAmount?
    /// The last byte moved either way: activity costs a store here, not a timer reschedule.
    var lastActivity = NIODeadline.uptimeNanoseconds(0)

    var exchangeIdle: NIODeadline? { idleTimeout.map { lastActivity + $0 } }

    /// The first deadline to come, if any.
    var earliest: NIODeadline? {
        // Pairwise, not `[…].min()`: an array of the candidates would allocate on every request.
        func earlier(_ a: NIODeadline?, _ b: NIODeadline?) -> NIODeadline? {
            guard let a else { return b }
            guard let b else { return a }
            return min(a, b)
        }
        return earlier(
            earlier(earlier(keepAlive, requestHeader), earlier(stall, linger)),
            earlier(earlier(earlier(request, responseHeader), earlier(perTry, retry)), exchangeIdle))
    }

    /// Clears the exchange's deadlines when it ends.
    mutating func exchangeEnded() {
        request = nil
        responseHeader = nil
        perTry = nil
        retry = nil
        idleTimeout = nil
    }

    /// The most important deadline due at `now`, cleared (each fires once); nil when none is.
    ///
    /// `idleSuspended`: the exchange is connecting or waiting for the response head, which have
    /// timeouts of their own. An idle period that ends then starts over, so the idle timeout
    /// never cuts those shorter than configured.
    mutating func takeDue(at now: NIODeadline, idleSuspended: Bool) -> Kind? {
        if let due = takeFirstDue(Self.exchangeOrder, at: now) { return due }
        if let idle = exchangeIdle, idle <= now {
            if idleSuspended {
                lastActivity = now
            } else {
                idleTimeout = nil
                return .exchangeIdle
            }
        }
        return takeFirstDue(Self.connectionOrder, at: now)
    }

    /// The exchange's own verdicts come first, then (after idle) the connection's.
    private static var exchangeOrder: [(WritableKeyPath<Self, NIODeadline?>, Kind)] {
        [(\.request, .request), (\.responseHeader, .responseHeader), (\.perTry, .perTry), (\.retry, .retry)]
    }

    private static var connectionOrder: [(WritableKeyPath<Self, NIODeadline?>, Kind)] {
        [(\.requestHeader, .requestHeader), (\.stall, .stall), (\.linger, .linger), (\.keepAlive, .keepAlive)]
    }

    /// Clears and returns the first deadline of `order` that is due (only when the wheel
    /// fires, so the lists being built per call costs nothing on the request path).
    private mutating func takeFirstDue(_ order: [(WritableKeyPath<Self, NIODeadline?>, Kind)], at now: NIODeadline) -> Kind? {
        for (deadline, kind) in order {
            if let due = self[keyPath: deadline], due <= now {
                self[keyPath: deadline] = nil
                return kind
            }
        }
        return nil
    }
}
