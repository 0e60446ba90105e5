import LoomConfig
import Synchronization

/// Token buckets by key, shared by every event loop, with bounded memory.
///
/// Keys are spread over shards, each behind its own lock, so loops rarely meet on one; this
/// is the only lock a request can take, and only on routes with a rate limit. Each shard
/// keeps at most its share of `maxKeys`: when full, it forgets the buckets that are full
/// again (nothing is lost: a new bucket is full too), else the one idle the longest.
public final class RateLimiter: Sendable {
    public let rate: Double
    public let burst: Int
    private let shards: [ShardBox]
    private let perShard: Int
    private let clock: @Sendable () -> Int64

    struct Shard {
        var buckets: [String: TokenBucket] = [:]
    }

    /// A shard behind its lock (a class: a mutex cannot live in an array directly).
    final class ShardBox: Sendable {
        let state = Mutex(Shard())
    }

    static let shardCount = 16

    /// `clock`: milliseconds on a monotonic clock (tests pass their own).
    public init(rate: Double, burst: Int, maxKeys: Int, clock: @escaping @Sendable () -> Int64 = RateLimiter.monotonicMillis) {
        self.rate = rate
        self.burst = max(burst, 1)
        self.perShard = max(maxKeys / Self.shardCount, 1)
        self.shards = (0..<Self.shardCount).map { _ in ShardBox() }
        self.clock = clock
    }

    /// Milliseconds since the first use, on the monotonic clock.
    public static let monotonicMillis: @Sendable () -> Int64 = { start.duration(to: .now).inMilliseconds }

    private static let start = ContinuousClock.now

    /// Takes a token from `key`'s bucket.
    public func take(_ key: String) -> TokenBucket.Outcome {
        let now = clock()
        var hasher = Hasher()
        hasher.combine(key)
        let shard = Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.shardCount))
        let (rate, burst, limit) = (self.rate, self.burst, perShard)
        return shards[shard].state.withLock { shard in
            if shard.buckets[key] == nil && shard.buckets.count >= limit { Self.evict(&shard, limit: limit, now: now, rate: rate, burst: burst) }
            var bucket = shard.buckets[key] ?? TokenBucket(burst: burst, now: now)
            let outcome = bucket.take(now: now, rate: rate, burst: burst)
            shard.buckets[key] = bucket
            return outcome
        }
    }

    /// Makes room for one more key: first by forgetting buckets that are full again, else
    /// the one idle the longest (O(n) in the shard, only when it is full).
    private static func evict(_ shard: inout Shard, limit: Int, now: Int64, rate: Double, burst: Int) {
        shard.buckets = shard.buckets.filter { !$0.value.isFull(now: now, rate: rate, burst: burst) }
        guard shard.buckets.count >= limit, let oldest = shard.buckets.min(by: { $0.value.updated < $1.value.updated })?.key else { return }
        shard.buckets.removeValue(forKey: oldest)
    }

    /// Buckets held, for tests.
    package var keyCount: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.buckets.count } } }
}
