/// Configuration sections for features that later work will build.
///
/// Each is parsed and validated like any other section so that a typo is still an error, and
/// its presence is reported by `ConfigValidator` as "not supported yet". Nothing here is read
/// by the data path. As a feature lands, its section moves into the main model.
public struct PlannedFeatures: Sendable, Equatable {
    /// WarpDrive `[tls]`: automatic certificates.
    public var acme: ACMESettings?
    /// WarpDrive `[cache]`.
    public var cache: CacheSettings?
    /// WarpDrive `[postgres]`: cache invalidation over LISTEN/NOTIFY.
    public var postgres: PostgresSettings?
    /// Top-level sections recognised by name whose feature is planned (`tracing`,
    /// `plugins`, `admin`, `ebpf`, ...), with the key path of each. This list
    /// drives the "not supported yet" report; the typed contents of the sections with a known
    /// schema are in the fields below. (`admin`, `metrics`, YAML `cache`, `compression`,
    /// `security` and `auth` have no schema yet: their content is accepted as is and only
    /// listed here.)
    public var sections: [PlannedSection]
    /// `tracing`.
    public var tracing: TracingSettings?
    /// `ebpf`.
    public var ebpf: EBPFSettings?

    public init(acme: ACMESettings? = nil, cache: CacheSettings? = nil, postgres: PostgresSettings? = nil, sections: [PlannedSection] = [],
                tracing: TracingSettings? = nil, ebpf: EBPFSettings? = nil) {
        self.acme = acme
        self.cache = cache
        self.postgres = postgres
        self.sections = sections
        self.tracing = tracing
        self.ebpf = ebpf
    }
}

/// A recognised section for a planned feature.
public struct PlannedSection: Sendable, Equatable {
    /// Key path, e.g. `tracing` or `rate_limit`.
    public var path: String
    /// What the feature is, for the message ("distributed tracing").
    public var feature: String

    public init(path: String, feature: String) {
        self.path = path
        self.feature = feature
    }
}

public struct ACMESettings: Sendable, Equatable {
    public var enabled: Bool
    public var domains: [String]
    public var directory: String?

    public init(enabled: Bool, domains: [String] = [], directory: String? = nil) {
        self.enabled = enabled
        self.domains = domains
        self.directory = directory
    }
}

public struct CacheSettings: Sendable, Equatable {
    public var sizeBytes: Int?
    public var redisURL: String?

    public init(sizeBytes: Int? = nil, redisURL: String? = nil) {
        self.sizeBytes = sizeBytes
        self.redisURL = redisURL
    }
}

public struct PostgresSettings: Sendable, Equatable {
    public var url: String
    public var channel: String?

    public init(url: String, channel: String? = nil) {
        self.url = url
        self.channel = channel
    }
}
