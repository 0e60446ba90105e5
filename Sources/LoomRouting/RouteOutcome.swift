/// What a router answers for one request.
public enum RouteOutcome: Sendable, Equatable {
    /// Index into the router's `routes` of the first matching route, and its parameters.
    case matched(Int, PathCaptures)
    /// Some route matches path and host but none allows this method: answer 405 with
    /// `Allow` listing these methods (sorted, deduplicated).
    case methodNotAllowed(allowed: [String])
    case notFound
}
