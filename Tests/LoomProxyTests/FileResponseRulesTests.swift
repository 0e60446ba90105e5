import Foundation
import LoomConfig
import LoomHTTP
import NIOCore
import Testing

@testable import LoomProxy

/// Conditional requests, byte ranges, dates and confinement for the files loom serves.
@Suite struct FileResponseRulesTests {
    typealias Rules = FileResponseRules
    static let modified = 784_111_777  // Sun, 06 Nov 1994 08:49:37 GMT
    static let tag = Rules.entityTag(size: 1000, modified: modified)

    func plan(_ fields: [String: String]) -> Rules.Plan { plan("GET", fields) }

    func plan(_ method: String, _ fields: [String: String]) -> Rules.Plan {
        Rules.plan(method: method, size: 1000, modified: Self.modified) { fields[$0] }
    }

    @Test func datesParseAsTheyAreFormatted() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == Self.modified)
        #expect(HTTPDate.format(epochSeconds: Self.modified) == "Sun, 06 Nov 1994 08:49:37 GMT")
        for seconds in [0, 951_782_400, 1_709_164_800, 4_102_444_799] {
            #expect(HTTPDate.parse(HTTPDate.format(epochSeconds: seconds)) == seconds)
        }
        for bad in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", ""] {
            #expect(HTTPDate.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func conditionalsInRFCOrder() {
        let later = "Mon, 07 Nov 1994 08:49:37 GMT"
        let earlier = "Sat, 05 Nov 1994 08:49:37 GMT"
        #expect(plan([:]) == .full)
        #expect(plan(["if-none-match": Self.tag]) == .notModified)
        #expect(plan(["if-none-match": "\"other\", W/\(Self.tag)"]) == .notModified, "weak comparison")
        #expect(plan(["if-none-match": "*"]) == .notModified)
        #expect(plan("POST", ["if-none-match": Self.tag]) == .preconditionFailed)
        #expect(plan(["if-none-match": "\"other\"", "if-modified-since": later]) == .full, "If-None-Match wins over the date")
        #expect(plan(["if-modified-since": later]) == .notModified)
        #expect(plan(["if-modified-since": earlier]) == .full)
        #expect(plan(["if-modified-since": "yesterday"]) == .full, "an unreadable date is ignored")
        #expect(plan(["if-match": "W/\(Self.tag)"]) == .preconditionFailed, "If-Match compares strongly")
        #expect(plan(["if-match": Self.tag]) == .full)
        #expect(plan(["if-unmodified-since": earlier]) == .preconditionFailed)
        #expect(plan(["if-unmodified-since": later, "range": "bytes=0-9"]) == .partial(0...9))
    }

    @Test func rangesAndIfRange() {
        #expect(plan(["range": "bytes=0-99"]) == .partial(0...99))
        #expect(plan(["range": "bytes=900-"]) == .partial(900...999))
        #expect(plan(["range": "bytes=-100"]) == .partial(900...999))
        #expect(plan(["range": "bytes=-5000"]) == .partial(0...999))
        #expect(plan(["range": "bytes=990-5000"]) == .partial(990...999))
        #expect(plan(["range": "bytes=1000-"]) == .rangeNotSatisfiable)
        #expect(plan(["range": "bytes=-0"]) == .rangeNotSatisfiable)
        for ignored in ["bytes=9-1", "bytes=a-b", "items=0-9", "bytes=0-1,5-9", "bytes=-", "bytes=+1-2"] {
            #expect(plan(["range": ignored]) == .full, "\(ignored)")
        }
        #expect(plan("HEAD", ["range": "bytes=0-9"]) == .full, "ranges are for GET")
        #expect(plan(["range": "bytes=0-9", "if-range": Self.tag]) == .partial(0...9))
        #expect(plan(["range": "bytes=0-9", "if-range": "\"stale\""]) == .full)
        #expect(plan(["range": "bytes=0-9", "if-range": "Sun, 06 Nov 1994 08:49:37 GMT"]) == .partial(0...9))
        #expect(plan(["range": "bytes=0-9", "if-range": "Mon, 07 Nov 1994 08:49:37 GMT"]) == .full)
        #expect(Rules.byteRange("bytes=0-0", size: 0) == .rangeNotSatisfiable)
    }

    @Test func mediaTypes() {
        #expect(Rules.mediaType(of: "/srv/a/index.HTML") == "text/html; charset=utf-8")
        #expect(Rules.mediaType(of: "/srv/a.b/file") == "application/octet-stream")
        #expect(Rules.mediaType(of: "/srv/app.wasm") == "application/wasm")
    }

    /// Encoded traversals, symbolic links out of the root and special files never resolve to
    /// anything outside the root.
    @Test func lookupsStayInsideTheRoot() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("loom-files-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let root = base + "/root"
        try FileManager.default.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
        try "secret".write(toFile: base + "/secret.txt", atomically: true, encoding: .utf8)
        try "hello".write(toFile: root + "/a b.txt", atomically: true, encoding: .utf8)
        try "docs".write(toFile: root + "/docs/index.html", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/out", withDestinationPath: base + "/secret.txt")
        try FileManager.default.createSymbolicLink(atPath: root + "/in", withDestinationPath: root + "/a b.txt")
        mkfifo(root + "/pipe", 0o600)
        func look(_ path: String) -> FileServer.Lookup { FileServer.lookup(Substring(path), root: root, index: ["index.html"]) }
        guard case .file(let spaced) = look("/a%20b.txt"), case .file(let linked) = look("/in") else {
            Issue.record("files inside the root are served")
            return
        }
        #expect(spaced.hasSuffix("/root/a b.txt") && linked == spaced)
        guard case .file(let index) = look("/docs/") else {
            Issue.record("a directory's index is served")
            return
        }
        #expect(index.hasSuffix("/docs/index.html"))
        #expect(look("/docs") == .directory)
        #expect(look("/out") == .forbidden, "a link out of the root")
        #expect(look("/..%2fsecret.txt") == .notFound, "an encoded slash")
        #expect(look("/%2e%2e/secret.txt") == .notFound, "an encoded dot segment")
        #expect(look("/a%00b") == .notFound)
        #expect(look("/pipe") == .notFound, "only regular files")
        #expect(look("/missing") == .notFound)
        #expect(look("/a%20b.txt/") == .notFound)

        let settings = XSendfileSettings(enabled: true, roots: [root], accelMappings: [.init(prefix: "/protected/", directory: root + "/docs")])
        guard case .file = FileServer.lookup(sendfile: root + "/a b.txt", accelRedirect: nil, settings: settings),
            case .file(let mapped) = FileServer.lookup(sendfile: nil, accelRedirect: "/protected/index.html?x=1", settings: settings)
        else {
            Issue.record("X-Sendfile and X-Accel-Redirect inside their directories are served")
            return
        }
        #expect(mapped.hasSuffix("/docs/index.html"))
        #expect(FileServer.lookup(sendfile: base + "/secret.txt", accelRedirect: nil, settings: settings) == .forbidden)
        #expect(FileServer.lookup(sendfile: root + "/../secret.txt", accelRedirect: nil, settings: settings) == .forbidden)
        #expect(FileServer.lookup(sendfile: "relative.txt", accelRedirect: nil, settings: settings) == .forbidden)
        #expect(FileServer.lookup(sendfile: root + "/out", accelRedirect: nil, settings: settings) == .forbidden)
        #expect(FileServer.lookup(sendfile: nil, accelRedirect: "/elsewhere/x", settings: settings) == .forbidden)
        #expect(FileServer.lookup(sendfile: nil, accelRedirect: "/protected/..%2f..%2fsecret.txt", settings: settings) == .notFound)
    }

    /// An X-Sendfile answer keeps the upstream's own fields, but not its hop-by-hop ones
    /// (including those its `Connection` names), its framing or what described its body.
    @Test func anXSendfileAnswerKeepsOnlyTheUpstreamsEndToEndFields() throws {
        var parser = HTTP1HeadParser()
        var bytes = ByteBuffer(string: "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
            + "X-Sendfile: /srv/a.txt\r\nX-Request-Id: up\r\nETag: \"u\"\r\nCache-Control: private\r\nContent-Length: 0\r\n\r\n")
        let head = try #require(try parser.parseResponseHead(&bytes, requestMethod: "GET"))
        let fields = DownstreamHandler.sendfileFields(
            head, requestIDHeader: "x-request-id", file: [HeaderPair(name: "Content-Type", value: "text/plain"), HeaderPair(name: "ETag", value: "\"f\"")])
        #expect(fields.map { "\($0.name): \($0.value)" } == ["Cache-Control: private", "Content-Type: text/plain", "ETag: \"f\""])
    }
}
