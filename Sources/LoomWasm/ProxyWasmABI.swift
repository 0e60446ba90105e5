/// The numbers of the Proxy-Wasm ABI v0.2.1 (`proxy-wasm/spec`, `abi-versions/v0.2.1`),
/// named as the spec names them.
enum ProxyStatus: UInt64, Error {
    case ok = 0
    case notFound = 1
    case badArgument = 2
    case serializationFailure = 3
    case parseFailure = 4
    case invalidMemoryAccess = 6
    case empty = 7
    case casMismatch = 8
    case internalFailure = 10
    case brokenConnection = 11
    case unimplemented = 12
}

enum ProxyLogLevel: UInt32, CaseIterable {
    case trace = 0, debug, info, warn, error, critical
}

enum ProxyBufferType: UInt32 {
    case httpRequestBody = 0
    case httpResponseBody = 1
    case downstreamData = 2
    case upstreamData = 3
    case httpCallResponseBody = 4
    case grpcReceiveBuffer = 5
    case vmConfiguration = 6
    case pluginConfiguration = 7
    case callData = 8
}

enum ProxyMapType: UInt32 {
    case httpRequestHeaders = 0
    case httpRequestTrailers = 1
    case httpResponseHeaders = 2
    case httpResponseTrailers = 3
    case grpcReceiveInitialMetadata = 4
    case grpcReceiveTrailingMetadata = 5
    case httpCallResponseHeaders = 6
    case httpCallResponseTrailers = 7
}

enum ProxyStreamType: UInt32 {
    case httpRequest = 0
    case httpResponse = 1
    case downstream = 2
    case upstream = 3
}

public enum ProxyMetricType: UInt32, Sendable {
    case counter = 0
    case gauge = 1
    case histogram = 2
}

/// The ABI versions a module may declare by exporting `proxy_abi_version_X_Y_Z`. Envoy's host
/// accepts 0.2.0 and 0.2.1 with the same callbacks (0.2.1 adds `proxy_get_log_level`);
/// 0.1.0 has other callback signatures and is refused.
public enum ProxyABIVersion: String, Sendable, CaseIterable {
    case v0_2_1 = "proxy_abi_version_0_2_1"
    case v0_2_0 = "proxy_abi_version_0_2_0"

    public var version: String {
        switch self {
        case .v0_2_1: "0.2.1"
        case .v0_2_0: "0.2.0"
        }
    }
}
