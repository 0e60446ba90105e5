import LoomBenchmarkSupport

/// Runs the `Proxied exchange` micro-benchmark's small GET N times (the argument, 1,000 by
/// default) on one thread, for `bench/instructions` to count with callgrind: instructions
/// do not drift with the VM's speed the way its times do. Single-threaded on purpose:
/// the Debian valgrind crashes when a Swift program starts a thread.
let count = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000
let rig = ProxiedExchange()
let first = rig.exchange()
precondition(first.hasPrefix("HTTP/1.1 200 OK\r\n") && first.hasSuffix("\r\n\r\nhello"), "unexpected response: \(first)")
var bytes = 0
for _ in 0..<count { bytes &+= rig.exchangeCountingBytes() }
precondition(bytes == count * first.utf8.count, "a response changed during the run")
rig.close()
