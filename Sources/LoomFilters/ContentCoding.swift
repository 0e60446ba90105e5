import LoomConfig
import LoomHTTP

/// Content-coding negotiation (RFC 9110 §12.5.3): which of the codings loom offers a client's
/// `Accept-Encoding` prefers.
enum ContentCoding {
    /// The offered coding with the highest weight the client gives it (ties: the first
    /// offered), or nil for identity: no header, or every offered coding at weight 0.
    ///
    /// A coding the field does not name takes the weight of `*`, if present; `x-gzip` is
    /// `gzip` (RFC 9110 §8.4.1.3). An element with a malformed weight is ignored.
    static func negotiate(_ acceptEncoding: String?, offered: [CompressionSettings.Algorithm]) -> CompressionSettings.Algorithm? {
        guard let acceptEncoding else { return nil }
        var weights: [String: Double] = [:]
        for element in acceptEncoding.split(separator: ",") {
            let parts = element.split(separator: ";")
            guard var coding = parts.first?.trimmingSpaces.lowercased(), !coding.isEmpty else { continue }
            if coding == "x-gzip" { coding = "gzip" }
            guard let weight = Self.weight(parts.dropFirst()) else { continue }
            // A coding named twice keeps its highest weight.
            weights[coding] = max(weights[coding] ?? 0, weight)
        }
        var best: (coding: CompressionSettings.Algorithm, weight: Double)?
        for coding in offered {
            let weight = weights[coding.rawValue] ?? weights["*"] ?? 0
            if weight > 0, weight > (best?.weight ?? 0) { best = (coding, weight) }
        }
        return best?.coding
    }

    /// The `q` parameter among `parameters` (1 without one); nil when it is not a weight:
    /// `0` to `1` with at most three decimals (RFC 9110 §12.4.2).
    private static func weight(_ parameters: ArraySlice<Substring>) -> Double? {
        for parameter in parameters {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpaces.lowercased() == "q" else { continue }
            let text = pair[1].trimmingSpaces
            guard text.count <= 5, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(text), (0...1).contains(value) else {
                return nil
            }
            return value
        }
        return 1
    }
}
