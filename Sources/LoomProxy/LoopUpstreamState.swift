/// One upstream's state on one event loop: the balancer's rotation, and the requests and
/// retries in flight that the retry budget weighs (`RetryBudget`, counted per loop so that
/// the request path shares no counter between loops).
///
/// A class: each exchange holds the one it is counted on and gives its counts back exactly
/// once, when it ends or in its deinit (`Exchange.release`). Touched only on its loop.
final class LoopUpstreamState {
    var picker = EndpointPicker.State()
    var activeRequests = 0
    var activeRetries = 0
}
