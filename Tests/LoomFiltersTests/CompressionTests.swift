import CompressNIO
import LoomConfig
import NIOCore
import Testing

@testable import LoomFilters

/// Content-coding negotiation, which responses the compression filter takes, and its
/// compressor's output decoded by zlib.
@Suite struct CompressionTests {
    @Test(arguments: [
        // (Accept-Encoding, offered, chosen)
        (nil, "gzip,deflate", nil),
        ("gzip", "gzip,deflate", "gzip"),
        ("deflate, gzip", "gzip,deflate", "gzip"),  // equal weights: the offer's order
        ("deflate, gzip", "deflate,gzip", "deflate"),
        ("gzip;q=0.5, deflate", "gzip,deflate", "deflate"),
        ("gzip;q=0, deflate;q=0", "gzip,deflate", nil),
        ("GZIP", "gzip", "gzip"),
        ("x-gzip", "gzip", "gzip"),
        ("*", "gzip,deflate", "gzip"),
        ("*;q=0.1, gzip;q=0", "gzip,deflate", "deflate"),
        ("br", "gzip,deflate", nil),
        ("identity", "gzip,deflate", nil),
        ("gzip;q=2", "gzip", nil),  // not a weight: the element is ignored
        ("gzip;q=abc, deflate", "gzip,deflate", "deflate"),
        ("gzip ; q=0.800, deflate;q=0.8", "gzip,deflate", "gzip"),
        ("", "gzip", nil),
    ] as [(String?, String, String?)])
    func negotiation(acceptEncoding: String?, offered: String, chosen: String?) {
        let algorithms = offered.split(separator: ",").map { CompressionSettings.Algorithm(rawValue: String($0))! }
        #expect(ContentCoding.negotiate(acceptEncoding, offered: algorithms)?.rawValue == chosen)
    }

    let filter = CompressionFilter(settings: CompressionSettings(minSize: 100))

    func respond(_ fields: [String: String], status: Int = 200, hasBody: Bool = true, accept: String? = "gzip") throws -> FilterResponse {
        let request = FilterTest.request("GET", accept.map { [("Accept-Encoding", $0)] } ?? [])
        var response = FilterTest.response(status: status, hasBody: hasBody, fields)
        try filter.onResponseHeaders(&response, request: request)
        return response
    }

    @Test func compressesListedTypesForClientsThatAcceptIt() throws {
        let response = try respond(["Content-Type": "text/html; charset=utf-8", "Content-Length": "5000", "ETag": "\"v1\"", "Accept-Ranges": "bytes"])
        #expect(!response.bodyTransforms.isEmpty)
        #expect(FilterTest.lines(response.changes) == ["-Accept-Ranges", "ETag: W/\"v1\"", "Content-Encoding: gzip", "Vary: Accept-Encoding"])
        let notModified = try respond(["Content-Type": "text/html", "ETag": "\"v1\""], status: 304, hasBody: false)
        #expect(notModified.bodyTransforms.isEmpty && notModified.header("etag") == "W/\"v1\"", "a 304 names the compressed variant's validator")

        let weak = try respond(["Content-Type": "application/json", "ETag": "W/\"v1\""])
        #expect(!weak.bodyTransforms.isEmpty, "no length known: compressed")
        #expect(weak.header("etag") == "W/\"v1\"")
    }

    @Test func leavesAloneWhatItMustNotOrNeedNotCompress() throws {
        let cases: [(String, [String: String], Int, Bool)] = [
            ("already encoded", ["Content-Type": "text/html", "Content-Encoding": "br"], 200, true),
            ("no-transform", ["Content-Type": "text/html", "Cache-Control": "public, no-transform"], 200, true),
            ("partial content", ["Content-Type": "text/html"], 206, true),
            ("no body (HEAD)", ["Content-Type": "text/html"], 200, false),
            ("unlisted type", ["Content-Type": "image/png"], 200, true),
            ("no type", [:], 200, true),
            ("too small", ["Content-Type": "text/html", "Content-Length": "99"], 200, true),
        ]
        for (name, fields, status, hasBody) in cases {
            let response = try respond(fields, status: status, hasBody: hasBody)
            #expect(response.bodyTransforms.isEmpty, "\(name)")
            #expect(response.header("content-encoding") == fields["Content-Encoding"], "\(name)")
        }
        let notAccepted = try respond(["Content-Type": "text/css"], accept: "br")
        #expect(notAccepted.bodyTransforms.isEmpty)
        #expect(FilterTest.lines(notAccepted.changes) == ["Vary: Accept-Encoding"], "a cache must still tell the variants apart")
        let varied = try respond(["Content-Type": "text/css", "Vary": "Origin, accept-encoding"])
        #expect(!FilterTest.lines(varied.changes).contains("Vary: Accept-Encoding"))
        let wildcard = CompressionFilter(settings: CompressionSettings(contentTypes: ["text/*"]))
        #expect(wildcard.isCompressible("text/markdown") && !wildcard.isCompressible("application/json"))
    }

    @Test(arguments: [CompressionSettings.Algorithm.gzip, .deflate])
    func compressorOutputDecodesToTheInputChunkByChunk(algorithm: CompressionSettings.Algorithm) throws {
        let compressor = try CompressionFilter.Compressor(algorithm, level: 5)
        var input: [UInt8] = []
        var compressed = ByteBuffer()
        for round in 0..<20 {
            // Text-like chunks of varied sizes, the last ones larger than zlib's bound for
            // the previous ones.
            let chunk = Array("chunk \(round): \(String(repeating: "loom ", count: round * round * 40))".utf8)
            input += chunk
            var out = try compressor.transform(ByteBuffer(bytes: chunk), endOfStream: false)
            #expect(out.readableBytes > 0, "each chunk leaves flushed")
            compressed.writeBuffer(&out)
        }
        var end = try compressor.transform(ByteBuffer(), endOfStream: true)
        compressed.writeBuffer(&end)
        #expect(compressed.readableBytes < input.count / 10)
        let decoded = try compressed.decompress(with: algorithm == .gzip ? .gzip() : .zlib())
        #expect(Array(decoded.readableBytesView) == input)
    }

    @Test func incompressibleInputStillRoundTrips() throws {
        var generator = SystemRandomNumberGenerator()
        let input = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let compressor = try CompressionFilter.Compressor(.gzip, level: 9)
        var compressed = try compressor.transform(ByteBuffer(bytes: input), endOfStream: false)
        var end = try compressor.transform(ByteBuffer(), endOfStream: true)
        compressed.writeBuffer(&end)
        #expect(Array(try compressed.decompress(with: .gzip()).readableBytesView) == input)
    }
}
