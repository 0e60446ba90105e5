import Synchronization

/// What every instance of one plugin shares across event loops: shared data (a key-value
/// store with compare-and-swap) and metrics. Proxy-Wasm makes these the
/// way instances on different threads talk, so they are the one place plugins take a lock
/// (held for a dictionary operation, never across a guest call).
///
/// Kept per plugin name for the life of the process, as Envoy keeps them per VM id: a
/// reload that keeps the plugin keeps its data.
final class PluginSharedState: Sendable {
    private static let registry = Mutex<[String: PluginSharedState]>([:])

    static func forPlugin(_ name: String) -> PluginSharedState {
        registry.withLock { plugins in
            if let state = plugins[name] { return state }
            let state = PluginSharedState()
            plugins[name] = state
            return state
        }
    }

    private struct Entry {
        var value: [UInt8]
        var cas: UInt32
    }

    private let data = Mutex<(entries: [String: Entry], nextCAS: UInt32)>(([:], 1))
    /// Bound on one value (a plugin is not a cache for large objects).
    static let maxValueBytes = 1024 * 1024

    let metrics = PluginMetrics()

    /// The value of `key` and its CAS token.
    func get(_ key: String) -> (value: [UInt8], cas: UInt32)? {
        data.withLock { state in state.entries[key].map { ($0.value, $0.cas) } }
    }

    /// Stores `value` under `key`. A non-zero `cas` must equal the key's current token
    /// (false: `CAS_MISMATCH`); a key not there yet takes any token, as in Envoy.
    func set(_ key: String, _ value: [UInt8], cas: UInt32) -> Bool {
        data.withLock { state in
            if cas != 0, let current = state.entries[key], current.cas != cas { return false }
            state.entries[key] = Entry(value: value, cas: state.nextCAS)
            state.nextCAS = state.nextCAS == .max ? 1 : state.nextCAS + 1
            return true
        }
    }
}
