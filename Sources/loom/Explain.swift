import ArgumentParser
import Foundation
import LoomConfig
import LoomProxy

/// `loom explain --config FILE METHOD URL [-H 'Name: value']...`: which route a request
/// takes and why every earlier route does not, without sending anything.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show which route a request takes, why earlier routes do not match, and what would be sent upstream.",
        discussion: """
            Nothing is sent: the request goes through loom's parser, path normalization, router, \
            rewrites and header rules as it would on the wire, and the head loom would send \
            upstream is printed. The exit status is 0 when a route matches, 1 when loom would \
            answer 404, 405 or 400, 2 for a configuration or usage problem.

            Example:
              loom explain --config gateway.yaml GET https://api.example.com/users/42 -H 'X-API-Version: v2'
            """
    )

    @Option(name: .long, help: "The Loom YAML or WarpDrive TOML file (default: $LOOM_CONFIG, then $WARPDRIVE_CONFIG).")
    var config: String?

    @Option(name: .customShort("H"), help: "A request header, 'Name: value' (repeatable).")
    var header: [String] = []

    @Option(name: .long, help: "The client address the request comes from.")
    var clientIP = "127.0.0.1"

    @Argument(help: "The request method, e.g. GET.")
    var method: String

    @Argument(help: "http(s)://host[:port]/path?query, or /path?query.")
    var url: String

    func run() throws {
        let environment = ProcessEnvironment.current
        guard let path = ConfigLoader.configPath(option: config, environment: environment) else {
            throw Self.usage("no configuration: pass --config FILE or set LOOM_CONFIG")
        }
        let result = ConfigLoader.load(path: path, environment: environment)
        guard let configuration = result.configuration, !result.hasFatal else {
            for diagnostic in result.diagnostics { print(diagnostic) }
            print(Validate.summary(file: path, result: result))
            throw ExitCode(2)
        }
        var headers: [(name: String, value: String)] = []
        for text in header {
            guard let colon = text.firstIndex(of: ":") else { throw Self.usage("header \"\(text)\" is not 'Name: value'") }
            headers.append((String(text[..<colon]), String(text[text.index(after: colon)...]).trimmingCharacters(in: " \t")))
        }
        do {
            let report = try RequestExplainer.explain(configuration, .init(method: method, url: url, headers: headers, clientIP: clientIP))
            print(report.text, terminator: "")
            if !report.matched { throw ExitCode.failure }
        } catch let problem as RequestExplainer.Problem {
            throw Self.usage(problem.description)
        }
    }

    /// Prints `message` to stderr and exits 2, as the help promises for usage problems.
    private static func usage(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("loom explain: \(message)\n".utf8))
        return ExitCode(2)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
