import Synchronization

/// The metrics a plugin defines (`proxy_define_metric`): counters, gauges and histograms by
/// name, shared by every instance of the plugin. Values are kept here for `proxy_get_metric`
/// and for loom's metrics output.
public final class PluginMetrics: Sendable {
    public struct Metric: Sendable, Equatable {
        public var name: String
        public var type: ProxyMetricType
        /// Counter total or gauge value.
        public var value: Int64 = 0
        /// Histogram observations: count and sum.
        public var count: UInt64 = 0
        public var sum: Int64 = 0
    }

    /// Bound on distinct metrics per plugin (a plugin defining one per request would
    /// otherwise grow without end).
    static let maxMetrics = 1_000

    private let state = Mutex<[Metric]>([])

    /// The id of metric `name` (created on first definition; ids start at 1). Nil when the
    /// name is taken by another type or the plugin has too many metrics.
    func define(_ name: String, type: ProxyMetricType) -> UInt32? {
        state.withLock { metrics in
            if let index = metrics.firstIndex(where: { $0.name == name }) {
                return metrics[index].type == type ? UInt32(index + 1) : nil
            }
            guard metrics.count < Self.maxMetrics else { return nil }
            metrics.append(Metric(name: name, type: type))
            return UInt32(metrics.count)
        }
    }

    enum Change { case record(Int64), increment(Int64) }

    /// Applies `change`; false for an unknown id or a change the type does not take
    /// (a counter is not decremented, a histogram is only recorded).
    func apply(_ change: Change, to id: UInt32) -> Bool {
        state.withLock { metrics in
            let index = Int(id) - 1
            guard metrics.indices.contains(index) else { return false }
            switch (metrics[index].type, change) {
            case (.histogram, .record(let value)):
                metrics[index].count &+= 1
                metrics[index].sum &+= value
            case (.histogram, .increment):
                return false
            case (.counter, .increment(let delta)) where delta < 0:
                return false
            case (_, .record(let value)):
                metrics[index].value = value
            case (_, .increment(let delta)):
                metrics[index].value &+= delta
            }
            return true
        }
    }

    /// A counter's or gauge's value (nil for an unknown id or a histogram).
    func value(_ id: UInt32) -> Int64? {
        state.withLock { metrics in
            let index = Int(id) - 1
            guard metrics.indices.contains(index), metrics[index].type != .histogram else { return nil }
            return metrics[index].value
        }
    }

    var all: [Metric] { state.withLock { $0 } }
}
