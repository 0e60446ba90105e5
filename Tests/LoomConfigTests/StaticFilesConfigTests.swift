import Foundation
import Testing

@testable import LoomConfig

/// `static` routes and `x_sendfile` in both dialects, and their mistakes.
@Suite struct StaticFilesConfigTests {
    @Test func staticRoutesAndSendfileDirectories() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("loom-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base.appendingPathComponent("public"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let yaml = ConfigLoader.load(text: """
            x_sendfile: {enabled: true, roots: [public], accel_mappings: {"/protected/": public}}
            routes:
              - {id: assets, path: "/assets/*", strip_prefix: true, static: {root: public, index: [index.htm, index.html]}, set_response_headers: {Cache-Control: max-age=60}}
            """, fileName: base.appendingPathComponent("loom.yaml").path, dialect: .loomYAML, environment: [:])
        #expect(yaml.diagnostics.map(\.description) == [])
        let config = try #require(yaml.configuration)
        let root = base.appendingPathComponent("public").standardizedFileURL.path
        #expect(config.routes[0].action == .files(StaticFiles(root: root, index: ["index.htm", "index.html"])))
        #expect(config.xSendfile == XSendfileSettings(enabled: true, roots: [root], accelMappings: [.init(prefix: "/protected/", directory: root)]))

        let toml = ConfigLoader.load(text: """
            [middleware]
            x_sendfile_enabled = true
            x_sendfile_roots = ["public"]
            [[routes]]
            path_prefix = "/"
            static = { root = "public" }
            """, fileName: base.appendingPathComponent("w.toml").path, dialect: .warpDriveTOML, environment: [:])
        #expect(toml.diagnostics.map(\.description) == [])
        #expect(toml.configuration?.xSendfile.roots == [root])

        let bad = ConfigLoader.load(text: """
            x_sendfile: {enabled: true, roots: [missing], accel_mappings: {protected: public}}
            routes:
              - {id: a, path: /a, static: {root: missing}}
              - {id: b, path: /b, static: {root: public, index: [../x]}, timeouts: {idle: 1s}}
            """, fileName: base.appendingPathComponent("bad.yaml").path, dialect: .loomYAML, environment: [:])
        let messages = bad.diagnostics.map(\.description).map { $0.replacingOccurrences(of: base.path + "/", with: "") }
        #expect(messages.contains { $0.contains("x_sendfile.roots: missing is not a directory") }, "\(messages)")
        #expect(messages.contains { $0.contains(#"x_sendfile.accel_mappings.protected: an X-Accel-Redirect prefix starts and ends with "/""#) })
        #expect(messages.contains { $0.contains("routes[0].static.root: missing is not a directory") })
        #expect(messages.contains { $0.contains(#"routes[1].static.index: index must name files in the directory (no "/")"#) })
        #expect(messages.contains { $0.contains("a timeout has no effect on a static route") })
    }
}
