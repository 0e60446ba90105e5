/// Computes the changes that turn one configuration into another (Sōzu's `diff`), and applies
/// changes to a configuration.
///
/// Every reload goes through here, whatever its source: the new file is loaded and validated,
/// diffed against the running configuration, and the changes are applied and published. The
/// list says what a reload did (the log and the control socket report it), and the engine
/// acts on it where a change needs more than a new snapshot (binding a listener).
///
/// Invariant (tested): `old.applying(changes(from: old, to: new)) == new`.
public enum ConfigDiff {
    public static func changes(from old: LoomConfiguration, to new: LoomConfiguration) -> [ConfigChange] {
        var changes: [ConfigChange] = []
        if old.origin != new.origin { changes.append(.origin(new.origin)) }
        if old.server != new.server { changes.append(.server(new.server)) }
        changes += edits(old.listeners, new.listeners).map(ConfigChange.listener)
        changes += upstreamChanges(old.upstreams, new.upstreams)
        changes += edits(old.plugins, new.plugins).map(ConfigChange.plugin)
        if old.filters != new.filters { changes.append(.filters(new.filters)) }
        changes += edits(old.routes, new.routes).map(ConfigChange.route)
        if old.xSendfile != new.xSendfile { changes.append(.xSendfile(new.xSendfile)) }
        if old.admin != new.admin { changes.append(.admin(new.admin)) }
        if old.metrics != new.metrics { changes.append(.metrics(new.metrics)) }
        if old.control != new.control { changes.append(.control(new.control)) }
        if old.planned != new.planned { changes.append(.planned(new.planned)) }
        return changes
    }

    /// An upstream whose endpoints alone changed becomes endpoint edits (so a control-socket
    /// client or the log sees "add endpoint", not a whole new upstream); any other change
    /// replaces it.
    private static func upstreamChanges(_ old: [UpstreamConfig], _ new: [UpstreamConfig]) -> [ConfigChange] {
        var changes: [ConfigChange] = []
        for edit in edits(old, new) {
            guard case .replace(let upstream) = edit, let previous = old.first(where: { $0.name == upstream.name }) else {
                changes.append(.upstream(edit))
                continue
            }
            var sameButEndpoints = previous
            sameButEndpoints.entries = upstream.entries
            if sameButEndpoints == upstream, let endpointEdits = uniqueEdits(previous.entries, upstream.entries) {
                changes += endpointEdits.map { .endpoint(upstream: upstream.name, $0) }
            } else {
                changes.append(.upstream(edit))
            }
        }
        return changes
    }

    /// Edits turning `old` into `new`, items matched by name. Lists with duplicate names
    /// (which validation refuses, except among an upstream's endpoints) are replaced whole.
    static func edits<Item: ConfigNamed>(_ old: [Item], _ new: [Item]) -> [ConfigEdit<Item>] {
        if let edits = uniqueEdits(old, new) { return edits }
        return old.map { .remove(name: $0.name) } + new.enumerated().map { .add($1, at: $0) }
    }

    /// Removals first, then replacements, then additions in increasing position: applied in
    /// that order, each addition's index is its final place. Items kept in both lists but
    /// moved relative to each other are removed and added again, except for the longest run
    /// that kept its order.
    private static func uniqueEdits<Item: ConfigNamed>(_ old: [Item], _ new: [Item]) -> [ConfigEdit<Item>]? {
        var newIndex: [String: Int] = [:]
        for (index, item) in new.enumerated() {
            guard newIndex.updateValue(index, forKey: item.name) == nil else { return nil }
        }
        var oldNames = Set<String>()
        for item in old {
            guard oldNames.insert(item.name).inserted else { return nil }
        }
        // The kept items, in old order, with their new positions.
        let kept = old.compactMap { item in newIndex[item.name].map { (item: item, at: $0) } }
        let stable = Set(longestIncreasingRun(kept.map(\.at)).map { kept[$0].item.name })

        var removals: [ConfigEdit<Item>] = []
        var replacements: [ConfigEdit<Item>] = []
        for item in old where !stable.contains(item.name) { removals.append(.remove(name: item.name)) }
        for (item, at) in kept where stable.contains(item.name) && item != new[at] { replacements.append(.replace(new[at])) }
        let additions = new.enumerated().filter { !stable.contains($1.name) }.map { ConfigEdit.add($1, at: $0) }
        return removals + replacements + additions
    }

    /// Indices into `values` of a longest strictly increasing subsequence (patience sorting,
    /// O(n log n): route tables have thousands of entries).
    static func longestIncreasingRun(_ values: [Int]) -> [Int] {
        var tails: [Int] = []  // indices into values: the smallest tail of each run length
        var previous = [Int](repeating: -1, count: values.count)
        for (index, value) in values.enumerated() {
            var low = 0
            var high = tails.count
            while low < high {
                let middle = (low + high) / 2
                if values[tails[middle]] < value { low = middle + 1 } else { high = middle }
            }
            if low > 0 { previous[index] = tails[low - 1] }
            if low == tails.count { tails.append(index) } else { tails[low] = index }
        }
        var run: [Int] = []
        var cursor = tails.last ?? -1
        while cursor >= 0 {
            run.append(cursor)
            cursor = previous[cursor]
        }
        return run.reversed()
    }
}

extension LoomConfiguration {
    /// This configuration with `changes` applied in order; the first change that does not fit
    /// the state it meets stops it. The result still has to be validated before it runs.
    public func applying(_ changes: [ConfigChange]) throws(ConfigChangeError) -> LoomConfiguration {
        var configuration = self
        for change in changes { try configuration.apply(change) }
        return configuration
    }

    public mutating func apply(_ change: ConfigChange) throws(ConfigChangeError) {
        switch change {
        case .listener(let edit): try listeners.apply(edit)
        case .upstream(let edit): try upstreams.apply(edit)
        case .endpoint(let name, let edit):
            guard let index = upstreams.firstIndex(where: { $0.name == name }) else {
                throw ConfigChangeError(change: change.description, reason: "there is no upstream named \"\(name)\"")
            }
            var entries = upstreams[index].entries
            try entries.apply(edit)
            upstreams[index].entries = entries
        case .route(let edit): try routes.apply(edit)
        case .plugin(let edit): try plugins.apply(edit)
        case .filters(let filters): self.filters = filters
        case .server(let server): self.server = server
        case .xSendfile(let settings): xSendfile = settings
        case .admin(let settings): admin = settings
        case .metrics(let settings): metrics = settings
        case .control(let settings): control = settings
        case .planned(let planned): self.planned = planned
        case .origin(let origin): self.origin = origin
        }
    }
}

extension Array where Element: ConfigNamed {
    mutating func apply(_ edit: ConfigEdit<Element>) throws(ConfigChangeError) {
        let index = firstIndex { $0.name == edit.name }
        let change = "\(edit.verb) \(Element.kind) \"\(edit.name)\""
        switch edit {
        case .add(let item, let at):
            if index != nil { throw ConfigChangeError(change: change, reason: "a \(Element.kind) with that name exists") }
            guard (0...count).contains(at) else {
                throw ConfigChangeError(change: change, reason: "position \(at) is outside 0...\(count)")
            }
            insert(item, at: at)
        case .remove:
            guard let index else { throw ConfigChangeError(change: change, reason: "there is no \(Element.kind) with that name") }
            remove(at: index)
        case .replace(let item):
            guard let index else { throw ConfigChangeError(change: change, reason: "there is no \(Element.kind) with that name") }
            self[index] = item
        }
    }
}
