/// Typed contents of the planned top-level sections whose schema is known (`tracing`,
/// `ebpf`). Both dialects decode them the same way; each is
/// validated now and reported as "not supported yet" by `ConfigValidator` (through
/// `PlannedFeatures.sections`). Optional fields are nil when not written: the defaults are
/// the feature's business once it is built.

/// `tracing:` (loom-faq.md, "How do I enable distributed tracing?").
public struct TracingSettings: Sendable, Equatable {
    public enum Provider: String, Sendable, CaseIterable {
        case otlp, jaeger, zipkin
    }

    public struct Sampling: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case ratio, always, never
        }

        public var type: Kind?
        /// Share of requests traced, 0...1; required when `type` is `ratio`.
        public var ratio: Double?

        public init(type: Kind? = nil, ratio: Double? = nil) {
            self.type = type
            self.ratio = ratio
        }
    }

    public var enabled: Bool?
    public var provider: Provider?
    /// `otlp.endpoint`, e.g. `otel-collector:4317`.
    public var otlpEndpoint: String?
    public var sampling: Sampling?

    public init(enabled: Bool? = nil, provider: Provider? = nil, otlpEndpoint: String? = nil, sampling: Sampling? = nil) {
        self.enabled = enabled
        self.provider = provider
        self.otlpEndpoint = otlpEndpoint
        self.sampling = sampling
    }
}

/// `ebpf:` (loom-faq.md, "Does Loom support eBPF acceleration?").
public struct EBPFSettings: Sendable, Equatable {
    public var enabled: Bool?
    public var socketRedirect: Bool?

    public init(enabled: Bool? = nil, socketRedirect: Bool? = nil) {
        self.enabled = enabled
        self.socketRedirect = socketRedirect
    }
}
