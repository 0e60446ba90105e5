import CompressNIO
import LoomConfig
import LoomHTTP
import NIOCore

/// `compression`: compresses response bodies with gzip or deflate when the client accepts it
/// (`Accept-Encoding`, by weight), the media type is listed and the body is not too small.
///
/// Never compresses twice (a response with any `Content-Encoding` passes untouched), nor
/// what must not change: `Cache-Control: no-transform`, partial content (206). A
/// compressible response says `Vary: Accept-Encoding` whether or not this client got it
/// compressed (and whether or not it has a body: HEAD, 304), so a cache keeps the two apart. A compressed response's strong `ETag`
/// becomes weak (the bytes differ), and it no longer offers ranges.
struct CompressionFilter: HTTPFilter {
    let settings: CompressionSettings
    var name: String { "compression" }

    static let factory: FilterRegistry.Factory = { settings in
        guard case .compression(let settings) = settings else { return nil }
        return CompressionFilter(settings: settings)
    }

    func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
        guard response.status != 206, Self.isIdentity(response.header("content-encoding")),
            let type = response.header("content-type"), isCompressible(type),
            !Self.forbidsTransform(response.header("cache-control"))
        else { return }
        // Bodiless responses too (HEAD, 304): their fields describe the full response.
        if !Self.variesOnAcceptEncoding(response.header("vary")) { response.changes.add("Vary", "Accept-Encoding") }
        if let length = response.header("content-length").flatMap({ Int($0) }), length < settings.minSize { return }
        guard let coding = ContentCoding.negotiate(request.header("accept-encoding"), offered: settings.algorithms) else { return }
        // The validator of the compressed variant, on a 304 or HEAD answer too, so a cache
        // holding the compressed body can freshen it (RFC 9111 §4.3.4).
        if let etag = response.header("etag"), !etag.hasPrefix("W/") { response.changes.set("ETag", "W/" + etag) }
        guard response.hasBody else { return }
        response.transformBody(try Compressor(coding, level: settings.level))
        response.changes.set("Content-Encoding", coding.rawValue)
        response.changes.remove("Accept-Ranges")
    }

    /// Whether the media type of `contentType` (parameters ignored) is listed, by itself or
    /// by its whole type (`text/*`).
    func isCompressible(_ contentType: String) -> Bool {
        // Read in place (this runs on every response): the media type before any `;`.
        let media = contentType[..<(contentType.firstIndex(of: ";") ?? contentType.endIndex)].trimmingSpaces
        guard let slash = media.firstIndex(of: "/") else { return false }
        let type = media[..<media.index(after: slash)]
        return settings.contentTypes.contains { listed in
            listed.hasSuffix("/*") ? HeaderPair.namesEqual(type, listed.dropLast()) : HeaderPair.namesEqual(media, listed)
        }
    }

    static func isIdentity(_ contentEncoding: String?) -> Bool {
        guard let contentEncoding else { return true }
        let coding = Substring(contentEncoding).trimmingSpaces.lowercased()
        return coding.isEmpty || coding == "identity"
    }

    /// `Cache-Control: no-transform` (RFC 9111 §5.2.2.6): intermediaries must not change
    /// the content.
    static func forbidsTransform(_ cacheControl: String?) -> Bool {
        guard let cacheControl else { return false }
        return cacheControl.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == "no-transform" }
    }

    static func variesOnAcceptEncoding(_ vary: String?) -> Bool {
        guard let vary else { return false }
        return vary.split(separator: ",").contains {
            let name = $0.trimmingSpaces.lowercased()
            return name == "*" || name == "accept-encoding"
        }
    }

    /// One response's compressor. Each chunk leaves compressed and flushed (zlib's sync
    /// flush), so a streamed response reaches the client as it comes rather than when a
    /// compression block fills.
    final class Compressor: BodyTransform {
        private let zlib: ZlibCompressor

        init(_ coding: CompressionSettings.Algorithm, level: Int) throws {
            let configuration = ZlibConfiguration(windowSize: 15, compressionLevel: Int32(level), memoryLevel: 8, strategy: .default)
            zlib = try ZlibCompressor(algorithm: coding == .gzip ? .gzip : .zlib, configuration: configuration)
        }

        func transform(_ chunk: ByteBuffer, endOfStream: Bool) throws -> ByteBuffer {
            if chunk.readableBytes == 0 && !endOfStream { return chunk }
            var input = chunk
            var output = ByteBuffer()
            output.reserveCapacity(zlib.maxSize(from: input))
            while true {
                do {
                    try zlib.deflate(from: &input, to: &output, flush: endOfStream ? .finish : .sync)
                    // A sync flush is complete once the input is used up with room to spare
                    // (a full output buffer may hide more pending output); `.finish` throws
                    // `bufferOverflow` until the stream has ended.
                    if endOfStream || (input.readableBytes == 0 && output.writableBytes > 0) { return output }
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    // More room, then go on where zlib stopped.
                }
                output.reserveCapacity(minimumWritableBytes: max(4096, output.capacity))
            }
        }
    }
}
