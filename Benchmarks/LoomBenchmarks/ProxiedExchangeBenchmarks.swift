import Benchmark
import LoomBenchmarkSupport

/// One whole proxied small GET through loom's own code, without sockets: a `DownstreamHandler`
/// and a pooled `UpstreamConnection`, each on an `EmbeddedChannel` of one embedded loop, with
/// `bench/run`'s configuration, its wrk request and its nginx backend's response, byte for byte.
///
/// `bench/run` prices a request with the kernel and SwiftNIO's socket path included, on a VM
/// whose speed drifts by ±15 %: a change worth half a microsecond of loom's work drowns there.
/// This figure is loom's part alone (parse, route, head rewrite both ways, pool, timers, end of
/// the exchange) plus the embedded channels' small fixed cost, steady enough to compare two
/// builds. The socket path is the SwiftNIO forwarder's (`bench/run --nio-forwarder`).
enum ProxiedExchangeBenchmarks {
    static func register() {
        Benchmark("Proxied exchange: small GET, pooled upstream") { benchmark in
            let rig = ProxiedExchange()
            // Checked in full once, outside the measured region: a rig that stopped proxying
            // (a refused request, a changed route) must not measure a 404 instead.
            let first = rig.exchange()
            precondition(first.hasPrefix("HTTP/1.1 200 OK\r\n") && first.hasSuffix("\r\n\r\nhello"), "unexpected response: \(first)")
            let length = first.utf8.count
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(rig.exchangeCountingBytes() == length)
            }
            benchmark.stopMeasurement()
            rig.close()
        }
    }
}
