import Benchmark

/// The micro-benchmark suite of the data path's hot pieces (issue 4): route match, header
/// rewrite, pool lease/release, and a whole proxied exchange on embedded channels.
/// `bench/run` measures the whole proxy against nginx and HAProxy;
/// these isolate one piece each, so a change to it shows up here as time and mallocs per
/// operation without the noise of sockets, wrk and a backend.
///
/// Every benchmark runs 1,000 operations per iteration (`.kilo`): each figure in the table is
/// per single operation (one match, one head, one lease + release). The limits keep the whole
/// suite well under a minute on the 2-core machine.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .mallocBytesCount],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 2_000
    )
    RouteMatchBenchmarks.register()
    HeaderRewriteBenchmarks.register()
    PoolBenchmarks.register()
    ProxiedExchangeBenchmarks.register()
}
