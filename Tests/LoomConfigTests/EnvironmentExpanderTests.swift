import Testing
@testable import LoomConfig

/// `${VAR}` substitution rules.
struct EnvironmentExpanderTests {
    let expander = EnvironmentExpander(environment: ["A": "1", "EMPTY": "", "HOST": "db"], file: "f")

    func expand(_ text: String) -> String? {
        try? expander.substitute(text).get()
    }

    func problem(_ text: String) -> String? {
        if case .failure(let problem) = expander.substitute(text) { return problem.message }
        return nil
    }

    @Test func substitutesVariablesAndDefaults() {
        #expect(expand("${A}") == "1")
        #expect(expand("${HOST}:${A}") == "db:1")
        #expect(expand("x${NOPE:-fallback}y") == "xfallbacky")
        #expect(expand("${EMPTY:-d}") == "d")
        #expect(expand("${EMPTY}") == "")
        #expect(expand("${NOPE:-}") == "")
    }

    @Test func dollarEscapesAndLoneDollars() {
        #expect(expand("$$A") == "$A")
        #expect(expand("$${A}") == "${A}")
        #expect(expand("cost $5") == "cost $5")
        #expect(expand("end$") == "end$")
    }

    @Test func problems() {
        #expect(problem("${NOPE}") == "environment variable \"NOPE\" is not set")
        #expect(problem("${A") == "unterminated \"${\" in \"${A\"")
        #expect(problem("${1A}") == "invalid variable name \"1A\" in \"${1A}\"")
        #expect(problem("${}") == "invalid variable name \"\" in \"${}\"")
    }

    @Test func unsetVariableInvalidatesOnlyThatValue() {
        var node = ConfigNode(.map([
            .init(key: "a", keyLocation: nil, value: ConfigNode(.scalar(ConfigScalar(kind: .string, text: "${NOPE}")), at: LoomConfig.SourceLocation(file: "f", line: 2, column: 4))),
            .init(key: "b", keyLocation: nil, value: ConfigNode(.sequence([ConfigNode(.scalar(ConfigScalar(kind: .string, text: "${A}")), at: nil)]), at: nil)),
        ]), at: nil)
        let diagnostics = expander.expand(&node)
        #expect(diagnostics.map(\.description) == ["f:2:4 a: environment variable \"NOPE\" is not set"])
        guard case .map(let entries) = node.value,
              case .scalar(let a) = entries[0].value.value,
              case .sequence(let items) = entries[1].value.value,
              case .scalar(let b) = items[0].value else {
            Issue.record("tree shape changed")
            return
        }
        #expect(a.kind == .invalid)
        #expect(b.text == "1" && b.isExpanded)
    }
}
