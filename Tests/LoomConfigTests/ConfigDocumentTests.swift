import Testing

@testable import LoomConfig

/// Runtime changes made to a parsed file (what the control socket does) and the file written
/// back (`loom ctl save`).
@Suite struct ConfigDocumentTests {
    static let base = """
        upstreams:
          - name: app
            endpoints:
              - "${APP:-127.0.0.1:3001}"
              - address: 127.0.0.1:3002
                weight: 2
        routes:
          - id: api
            path: /api/*
            upstream: app
        """

    static func document(_ text: String = base, fileName: String = "gw.yaml") throws -> ConfigDocument {
        try ConfigDocument.parse(text: text, fileName: fileName).get()
    }

    static func route(_ json: String) throws -> ConfigFragment {
        try ConfigFragment.parseJSON(json).get()
    }

    /// The document after `edits`, loaded: its configuration and error messages.
    static func applying(_ edits: [ConfigDocument.Edit], to text: String = base, environment: [String: String] = [:]) throws -> (ConfigDocument, LoomConfiguration?, [String]) {
        var document = try document(text)
        for edit in edits { document = try document.applying(edit, environment: environment) }
        let loaded = document.load(environment: environment)
        return (document, loaded.configuration, loaded.diagnostics.filter { $0.severity == .error }.map(\.message))
    }

    @Test func routesAreInsertedWhereAskedAndRemovedByID() throws {
        let beta = try Self.route(#"{"id": "beta", "path": "/beta", "upstream": "app"}"#)
        let gamma = try Self.route(#"{"id": "gamma", "path": "/gamma", "upstream": "app"}"#)
        let (_, config, errors) = try Self.applying([.addRoute(beta, at: 0), .addRoute(gamma, at: nil)])
        #expect(errors.isEmpty)
        #expect(config?.routes.map(\.name) == ["beta", "api", "gamma"])
        let (_, removed, _) = try Self.applying([.addRoute(beta, at: 0), .removeRoute(name: "api")])
        #expect(removed?.routes.map(\.name) == ["beta"])
    }

    @Test func endpointsAreAddedDrainedWeightedAndRemoved() throws {
        let (document, config, errors) = try Self.applying([
            .addEndpoint(upstream: "app", address: "127.0.0.1:3003", weight: nil, backup: true),
            .setEndpoint(upstream: "app", address: "127.0.0.1:3001", weight: nil, drain: true),
            .setEndpoint(upstream: "app", address: "127.0.0.1:3002", weight: 1, drain: nil),
        ])
        #expect(errors.isEmpty)
        let app = try #require(config?.upstreams.first)
        #expect(app.endpoints.map(\.description) == ["127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"])
        #expect(app.draining == [true, false, false])
        #expect(app.entries.map(\.options.weight) == [1, 1, 1])
        #expect(app.entries.map(\.options.backup) == [false, false, true])
        // Defaults leave the file: weight 1 and drain false are not written.
        let text = try document.yaml()
        #expect(text.contains("- address: ${APP:-127.0.0.1:3001}\n    drain: true"), "\(text)")
        #expect(text.contains("- 127.0.0.1:3002\n"), "\(text)")
        #expect(text.contains("- address: 127.0.0.1:3003\n    backup: true"), "\(text)")

        let (undrained, _, _) = try Self.applying([.setEndpoint(upstream: "app", address: "127.0.0.1:3001", weight: nil, drain: false)], to: text)
        #expect(try undrained.yaml().contains("- ${APP:-127.0.0.1:3001}\n"))
        let (_, fewer, _) = try Self.applying([.removeEndpoint(upstream: "app", address: "127.0.0.1:3002")])
        #expect(fewer?.upstreams.first?.endpoints.map(\.description) == ["127.0.0.1:3001"])
    }

    @Test func namesAndAddressesMatchAfterExpansion() throws {
        let environment = ["APP": "127.0.0.1:4000"]
        let (document, config, errors) = try Self.applying(
            [.setEndpoint(upstream: "app", address: "127.0.0.1:4000", weight: 5, drain: nil)], environment: environment)
        #expect(errors.isEmpty)
        #expect(config?.upstreams.first?.entries.first?.options.weight == 5)
        #expect(try document.yaml().contains("${APP:-127.0.0.1:3001}"))
        #expect(throws: ConfigChangeError.self) {
            _ = try Self.document().applying(.removeEndpoint(upstream: "app", address: "127.0.0.1:3001"), environment: environment)
        }
    }

    @Test func impossibleEditsSayWhy() throws {
        let document = try Self.document()
        func reason(_ edit: ConfigDocument.Edit) -> String {
            do {
                _ = try document.applying(edit, environment: [:])
                return "applied"
            } catch {
                return error.description
            }
        }
        let api = try Self.route(#"{"id": "api", "path": "/x", "upstream": "app"}"#)
        let unnamed = try Self.route(#"{"path": "/x"}"#)
        #expect(reason(.addRoute(api, at: nil)) == #"cannot add route "api": a route with that id exists"#)
        #expect(reason(.addRoute(unnamed, at: nil)) == #"cannot add route "": a route needs an "id" string"#)
        #expect(reason(.addRoute(try Self.route(#"{"id": "b"}"#), at: 5)) == #"cannot add route "b": position 5 is outside 0...1"#)
        #expect(reason(.removeRoute(name: "nope")) == #"cannot remove route "nope": there is no route with that id"#)
        #expect(reason(.addUpstream(try Self.route(#"{"name": "app", "endpoints": ["127.0.0.1:1"]}"#))) == #"cannot add upstream "app": an upstream with that name exists"#)
        #expect(reason(.removeUpstream(name: "db")) == #"cannot remove upstream "db": there is no upstream with that name"#)
        #expect(reason(.addEndpoint(upstream: "app", address: "127.0.0.1:3002", weight: nil, backup: nil)).hasSuffix("the upstream has that endpoint"))
        #expect(reason(.addEndpoint(upstream: "app", address: "app:x", weight: nil, backup: nil)).contains(#"invalid endpoint "app:x""#))
        #expect(reason(.setEndpoint(upstream: "app", address: "127.0.0.1:9", weight: nil, drain: true))
            == #"cannot drain endpoint 127.0.0.1:9 of upstream "app": the upstream has no endpoint 127.0.0.1:9"#)
        #expect(ConfigDocument.Edit.setEndpoint(upstream: "app", address: "127.0.0.1:3002", weight: 3, drain: true).description
            == #"drain endpoint 127.0.0.1:3002 of upstream "app", set the weight of endpoint 127.0.0.1:3002 of upstream "app" to 3"#)
    }

    @Test func anEditThatBreaksTheConfigurationLoadsWithTheValidatorsErrors() throws {
        let (_, _, errors) = try Self.applying([.removeUpstream(name: "app")])
        #expect(errors.contains { $0.contains("app") }, "\(errors)")
        let (_, _, last) = try Self.applying([
            .removeEndpoint(upstream: "app", address: "127.0.0.1:3001"), .removeEndpoint(upstream: "app", address: "127.0.0.1:3002"),
        ])
        #expect(!last.isEmpty)
    }

    @Test func warpDriveTOMLIsNotEdited() throws {
        let document = try Self.document("[upstreams.app]\nhost = \"127.0.0.1\"\nport = 3000\n", fileName: "wd.toml")
        #expect(document.dialect == .warpDriveTOML)
        #expect {
            _ = try document.applying(.removeUpstream(name: "app"), environment: [:])
        } throws: { error in
            "\(error)".contains("need a Loom YAML configuration file (wd.toml is WarpDrive TOML)")
        }
    }

    @Test func theSpecExampleSurvivesARoundTrip() throws {
        let original = try Self.document(SpecExamples.loomCombined, fileName: "loom.yaml")
        let text = try original.yaml()
        let reparsed = try Self.document(text, fileName: "loom.yaml")
        let environment = SpecExamples.loomEnvironment
        #expect(original.load(environment: environment).configuration == reparsed.load(environment: environment).configuration)
        #expect(text.contains("${"), "environment references are kept")
        #expect(try reparsed.yaml() == text, "writing is stable")
    }

    @Test func stringsThatWouldReadAsOtherTypesAreQuoted() throws {
        let document = try Self.document("""
            routes:
              - id: "8080"
                path: /x
                respond: {status: 200, body: "true", headers: {X-Empty: "", X-Lines: "a\\nb"}}
            """)
        let text = try document.yaml()
        #expect(text.contains(#"id: "8080""#) && text.contains(#"body: "true""#) && text.contains(#"X-Empty: """#) && text.contains(#"X-Lines: "a\nb""#), "\(text)")
        let reparsed = try Self.document(text)
        #expect(reparsed.load(environment: [:]).configuration == document.load(environment: [:]).configuration)
    }

    @Test func fragmentsKeepTheirKeyOrderAndRefuseWhatIsNotAnObject() throws {
        let fragment = try Self.route(#"{"upstream": "app", "id": "z", "path": "/z", "n": 3, "on": true, "list": [1, "a"]}"#)
        #expect(fragment.keys == ["upstream", "id", "path", "n", "on", "list"])
        #expect(fragment["n"]?.integer == 3 && fragment["on"]?.boolean == true && fragment["id"]?.string == "z")
        #expect(fragment["n"]?.string == nil && fragment["missing"] == nil)
        #expect(fragment.json == #"{"upstream":"app","id":"z","path":"/z","n":3,"on":true,"list":[1,"a"]}"#)
        #expect(ConfigFragment.parseJSON("{").failureMessage?.hasPrefix("malformed JSON") == true)
        #expect(ConfigFragment.parseJSON("[1]").failureMessage == "expected a JSON object")
        #expect(ConfigFragment.parseJSON("id: x").failureMessage?.hasPrefix("malformed JSON") == true)
        #expect(ConfigFragment.parseYAML("id: x\npath: /x").map(\.keys) == .success(["id", "path"]))
        #expect(ConfigFragment.parseYAML("- a").failureMessage == "expected a mapping")
    }

    @Test func jsonIsReadExactlyAsWritten() throws {
        // What a YAML parser would fold or refuse: U+0085 and U+2028 raw, escaped surrogate
        // pairs, tabs between tokens.
        let fragment = try Self.route("\t{\"a\": \"x\u{85}y \u{2028} z\", \"b\": \"\\ud83d\\ude00\\u00e9\\/\\n\", \"c\": [-0.5e2, 12345678901234567890, null, false]}")
        #expect(fragment["a"]?.string == "x\u{85}y \u{2028} z")
        #expect(fragment["b"]?.string == "😀é/\n")
        #expect(fragment.json == #"{"a":"x\#u{85}y \#u{2028} z","b":"😀é/\n","c":[-50.0,12345678901234567890,null,false]}"#)
        let failures: [(String, String)] = [
            (#"{"a": 1,}"#, "expected a string key at byte 8"),
            (#"{"a": 1, "a": 2}"#, #"duplicate key "a""#),
            (#"{"a": "\ud83d"}"#, "unpaired surrogate"),
            (#"{"a": "\x"}"#, "invalid escape at byte 8"),
            ("{\"a\": \"line\nbreak\"}", "control character in a string"),
            (#"{"a": 01}"#, "invalid number"),
            (#"{"a": 1e999}"#, "number out of range"),
            (#"{"a": tru}"#, "unexpected character"),
            (#"{"a": 1} x"#, "unexpected text after the value"),
            (#"{"a": "open"#, "unterminated string"),
            (String(repeating: "[", count: 100), "nested more than 64 levels deep"),
        ]
        for (text, expected) in failures {
            let message = ConfigFragment.parseJSON(text).failureMessage ?? "parsed"
            #expect(message.hasPrefix("malformed JSON: ") && message.contains(expected), "\(text) → \(message)")
        }
    }
}

extension Result where Failure == ConfigFragment.FragmentError {
    var failureMessage: String? {
        if case .failure(let error) = self { return error.message }
        return nil
    }
}
