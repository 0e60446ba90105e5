/// Key-based conveniences over the node accessors: `reader.string(table, "host")` reads
/// `table.host` if present (nil, silently, when absent) with the right key path.
extension ConfigReader {
    mutating func string(_ table: ConfigTable, _ key: String) -> String? {
        table[key].flatMap { string($0, table.path(key)) }
    }

    mutating func int(_ table: ConfigTable, _ key: String, in range: ClosedRange<Int>? = nil) -> Int? {
        table[key].flatMap { int($0, table.path(key), in: range) }
    }

    mutating func double(_ table: ConfigTable, _ key: String, in range: ClosedRange<Double>? = nil) -> Double? {
        table[key].flatMap { double($0, table.path(key), in: range) }
    }

    /// A number that must be greater than zero (rates).
    mutating func positiveDouble(_ table: ConfigTable, _ key: String) -> Double? {
        positive(double(table, key), than: 0, table, key)
    }

    mutating func bool(_ table: ConfigTable, _ key: String) -> Bool? {
        table[key].flatMap { bool($0, table.path(key)) }
    }

    mutating func duration(_ table: ConfigTable, _ key: String) -> Duration? {
        table[key].flatMap { duration($0, table.path(key)) }
    }

    mutating func seconds(_ table: ConfigTable, _ key: String) -> Duration? {
        table[key].flatMap { seconds($0, table.path(key)) }
    }

    /// A duration that must be greater than zero (timeouts: zero would fire at once).
    mutating func positiveDuration(_ table: ConfigTable, _ key: String) -> Duration? {
        positive(duration(table, key), than: .zero, table, key)
    }

    /// Whole seconds that must be greater than zero (TOML `*_timeout_secs`).
    mutating func positiveSeconds(_ table: ConfigTable, _ key: String) -> Duration? {
        positive(seconds(table, key), than: .zero, table, key)
    }

    /// `value` when it is greater than `zero`; otherwise the key's "must be greater than 0".
    mutating func positive<T: Comparable>(_ value: T?, than zero: T, _ table: ConfigTable, _ key: String) -> T? {
        guard let value else { return nil }
        guard value > zero else {
            report(table.path(key), at: table[key]?.location, "must be greater than 0")
            return nil
        }
        return value
    }

    mutating func size(_ table: ConfigTable, _ key: String) -> Int? {
        table[key].flatMap { size($0, table.path(key)) }
    }

    mutating func stringList(_ table: ConfigTable, _ key: String) -> [String]? {
        table[key].flatMap { stringList($0, table.path(key)) }
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ table: ConfigTable, _ key: String, as type: T.Type) -> T? where T.RawValue == String {
        table[key].flatMap { choice($0, table.path(key), as: type) }
    }

    mutating func table(_ parent: ConfigTable, _ key: String, allowed: [String]) -> ConfigTable? {
        parent[key].flatMap { table($0, at: parent.path(key), allowed: allowed) }
    }

    /// A string that must be present; reports `missing required key` at the table.
    mutating func requiredString(_ table: ConfigTable, _ key: String) -> String? {
        guard table.has(key) else {
            report(table.path, at: table.location, "missing required key \"\(key)\"")
            return nil
        }
        return string(table, key)
    }

    /// `watch_config` and `watch_interval` of the server section (the same in both dialects).
    mutating func watchSettings(_ table: ConfigTable, into server: inout ServerSettings) {
        if let watch = bool(table, "watch_config") { server.watchConfig = watch }
        guard let interval = duration(table, "watch_interval") else { return }
        guard (Duration.milliseconds(100)...Duration.seconds(3600)).contains(interval) else {
            report(table.path("watch_interval"), at: table["watch_interval"]?.location, "must be between 100ms and 1h")
            return
        }
        server.watchInterval = interval
    }
}
