import Benchmark
import LoomProxy
import NIOCore

/// Pool lease/release: `UpstreamPool.takeIdle` and `release`, what every proxied request on a
/// kept-alive upstream connection does once. The clock is the embedded loop's virtual one
/// (the proxy reads its loop's `now` the same way), so the figure is the pool's own cost.
enum PoolBenchmarks {
    static func register() {
        // The common case: one request at a time on the loop, a few idle connections kept.
        Benchmark("Pool lease + release (8 idle, 1 in flight)") { benchmark in
            let rig = PooledConnections(count: 8)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                guard let connection = rig.pool.takeIdle() else { preconditionFailure("the pool has idle connections") }
                rig.pool.release(connection, now: rig.loop.now)
            }
            benchmark.stopMeasurement()
            rig.close()
        }

        // A burst: 20 requests lease every idle connection, then all come back. Per operation
        // is one lease + one release, as above (20 divides the 1,000 operations per iteration,
        // so the per-operation figures are exact).
        Benchmark("Pool lease + release (burst of 20)") { benchmark in
            let burst = 20
            precondition(benchmark.scaledIterations.count % burst == 0)
            let rig = PooledConnections(count: burst)
            var inFlight: [UpstreamConnection] = []
            inFlight.reserveCapacity(burst)
            benchmark.startMeasurement()
            for _ in 0..<(benchmark.scaledIterations.count / burst) {
                for _ in 0..<burst {
                    guard let connection = rig.pool.takeIdle() else { preconditionFailure("the pool has idle connections") }
                    inFlight.append(connection)
                }
                for connection in inFlight { rig.pool.release(connection, now: rig.loop.now) }
                inFlight.removeAll(keepingCapacity: true)
            }
            benchmark.stopMeasurement()
            rig.close()
        }
    }
}
