import ArgumentParser
import Foundation
import LoomConfig
import LoomProxy

/// `loom ctl COMMAND ...`: the control socket's command-line client. Each subcommand sends
/// one request (docs/control-socket.md) and prints the result as JSON; an error goes to
/// stderr with exit status 1.
struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change and inspect a running loom through its control socket.",
        discussion: """
            The socket is --socket, else $LOOM_CONTROL_SOCKET, else control.socket of the \
            configuration (--config, $LOOM_CONFIG, $WARPDRIVE_CONFIG). Changes apply at once and \
            last until the file is reloaded; `loom ctl save` writes them to the file.

            Examples:
              loom ctl --config gateway.yaml status
              loom ctl drain app 127.0.0.1:9001
              loom ctl add-route '{"id": "beta", "path": "/beta/*", "upstream": "app"}'
              loom ctl add-route --file route.yaml --position 0
              loom ctl save
            """,
        subcommands: [
            Status.self, Routes.self, Upstreams.self, Endpoints.self, Processes.self, Restart.self, AddRoute.self, RemoveRoute.self, AddUpstream.self,
            RemoveUpstream.self, AddEndpoint.self, RemoveEndpoint.self, Drain.self, Undrain.self, Weight.self, Reload.self,
            Dump.self, Save.self, Send.self,
        ]
    )

    /// Given before the subcommand (`loom ctl --socket S status`); the subcommand's own
    /// (`loom ctl status --socket S`) win.
    @OptionGroup var connection: Connection

    /// Where the socket is, shared by every subcommand.
    struct Connection: ParsableArguments {
        @Option(help: "The control socket's path.")
        var socket: String?

        @Option(name: .shortAndLong, help: "The configuration whose control.socket to use.")
        var config: String?

        @Option(help: "Seconds to wait for an answer (default 60).")
        var timeout: Int?

        /// These settings, with `outer`'s where these have none.
        func merged(_ outer: Connection) -> Connection {
            var merged = self
            merged.socket = socket ?? outer.socket
            merged.config = config ?? outer.config
            merged.timeout = timeout ?? outer.timeout
            return merged
        }

        func socketPath() throws -> String {
            let environment = ProcessEnvironment.current
            if let socket { return socket }
            if let socket = environment["LOOM_CONTROL_SOCKET"], !socket.isEmpty { return socket }
            guard let path = ConfigLoader.configPath(option: config, environment: environment) else {
                throw ValidationError("no control socket: pass --socket PATH, set LOOM_CONTROL_SOCKET, or give the configuration with --config")
            }
            guard let configuration = ConfigLoader.load(path: path, environment: environment).configuration else {
                throw ValidationError("cannot read \(path) (check it with `loom validate`)")
            }
            guard let control = configuration.control else {
                throw ValidationError("\(path) has no control section: add `control: {socket: PATH}` and restart loom")
            }
            return control.socket
        }

        /// Sends one request made of `arguments` (JSON texts by key) and prints the result.
        func send(_ command: String, _ arguments: [(String, String)] = []) throws {
            let fields = [("version", "\(ControlClient.protocolVersion)"), ("command", ConfigFragment.quoted(command))] + arguments
            try send(line: "{" + fields.map { "\(ConfigFragment.quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}")
        }

        func send(line: String) throws {
            let client: ControlClient
            let answer: String
            do {
                client = try ControlClient(path: try socketPath(), timeout: .seconds(max(1, timeout ?? 60)))
                answer = try client.request(line) { _ in FileHandle.standardError.write(Data("processing...\n".utf8)) }
            } catch let failure as ControlClient.Failure {
                FileHandle.standardError.write(Data("loom ctl: \(failure)\n".utf8))
                throw ExitCode.failure
            }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(answer.utf8))) as? [String: Any] else {
                FileHandle.standardError.write(Data("loom ctl: unreadable answer: \(answer)\n".utf8))
                throw ExitCode.failure
            }
            if object["status"] as? String == "ok" {
                let result = object["result"] ?? [String: Any]()
                let data = (try? JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
                print(String(decoding: data, as: UTF8.self))
                return
            }
            var message = "loom ctl: \(object["error"] as? String ?? answer)\n"
            for detail in object["details"] as? [String] ?? [] { message += "  \(detail)\n" }
            FileHandle.standardError.write(Data(message.utf8))
            throw ExitCode.failure
        }

    }

    /// A route or upstream given inline (JSON or YAML) or in a file.
    struct Definition: ParsableArguments {
        @Argument(help: "The definition as JSON or YAML, as in the Loom YAML file.")
        var definition: String?

        @Option(name: .shortAndLong, help: "Read the definition from this JSON or YAML file.")
        var file: String?

        func json() throws -> String {
            let text: String
            switch (definition, file) {
            case (let inline?, nil): text = inline
            case (nil, let path?):
                guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
                text = contents
            default: throw ValidationError("give the definition inline or with --file, not both")
            }
            switch ConfigFragment.parseYAML(text) {
            case .success(let fragment): return fragment.json
            case .failure(let error): throw ValidationError("the definition is not a JSON or YAML mapping: \(error)")
            }
        }
    }

    struct Status: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Version, uptime, generation and unsaved runtime changes.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        func run() throws { try connection.send("status") }
    }

    struct Routes: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "The routes in matching order.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        func run() throws { try connection.send("list_routes") }
    }

    struct Upstreams: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "The upstreams with their endpoints' state.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        func run() throws { try connection.send("list_upstreams") }
    }

    struct Endpoints: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "One upstream's endpoints and their state.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @Argument(help: "The upstream.") var upstream: String
        func run() throws { try connection.send("list_endpoints", [("upstream", ConfigFragment.quoted(upstream))]) }
    }

    struct AddRoute: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Add a route (Loom YAML route syntax; `id` names it).")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var definition: Definition
        @Option(help: "Its place in the routes list (0 is first; default last).") var position: Int?
        func run() throws {
            try connection.send("add_route", [("route", try definition.json())] + (position.map { [("position", "\($0)")] } ?? []))
        }
    }

    struct RemoveRoute: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Remove a route by id.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @Argument(help: "The route's id.") var name: String
        func run() throws { try connection.send("remove_route", [("name", ConfigFragment.quoted(name))]) }
    }

    struct AddUpstream: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Add an upstream (Loom YAML upstream syntax; `name` names it).")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var definition: Definition
        func run() throws { try connection.send("add_upstream", [("upstream", try definition.json())]) }
    }

    struct RemoveUpstream: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Remove an upstream no route uses.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @Argument(help: "The upstream's name.") var name: String
        func run() throws { try connection.send("remove_upstream", [("name", ConfigFragment.quoted(name))]) }
    }

    /// An upstream and one of its endpoints.
    struct EndpointArguments: ParsableArguments {
        @Argument(help: "The upstream.") var upstream: String
        @Argument(help: "The endpoint: host:port, [::1]:port or unix:/path.") var address: String

        var fields: [(String, String)] { [("upstream", ConfigFragment.quoted(upstream)), ("address", ConfigFragment.quoted(address))] }
    }

    struct AddEndpoint: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Add an endpoint to an upstream.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var endpoint: EndpointArguments
        @Option(help: "Its weight (1-1000).") var weight: Int?
        @Flag(help: "A backup endpoint.") var backup = false
        func run() throws {
            var fields = endpoint.fields
            if let weight { fields.append(("weight", "\(weight)")) }
            if backup { fields.append(("backup", "true")) }
            try connection.send("add_endpoint", fields)
        }
    }

    struct RemoveEndpoint: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Remove an endpoint (requests in flight to it finish).")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var endpoint: EndpointArguments
        func run() throws { try connection.send("remove_endpoint", endpoint.fields) }
    }

    struct Drain: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Send an endpoint no new requests (those in flight finish).")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var endpoint: EndpointArguments
        func run() throws { try connection.send("drain_endpoint", endpoint.fields) }
    }

    struct Undrain: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Put a drained endpoint back in rotation.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var endpoint: EndpointArguments
        func run() throws { try connection.send("undrain_endpoint", endpoint.fields) }
    }

    struct Weight: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Set an endpoint's weight.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @OptionGroup var endpoint: EndpointArguments
        @Argument(help: "The weight (1-1000).") var weight: Int
        func run() throws { try connection.send("set_weight", endpoint.fields + [("weight", "\(weight)")]) }
    }

    struct Processes: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Supervised processes: state, pid, restarts, uptime, last exit.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        func run() throws { try connection.send("list_processes") }
    }

    struct Restart: CtlSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Restart a supervised upstream's process: stop signal, then a new one (its crash-loop count starts over).")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @Argument(help: "The upstream whose process to restart.") var name: String
        func run() throws { try connection.send("restart_process", [("name", ConfigFragment.quoted(name))]) }
    }

    struct Reload: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Reload the configuration file (it replaces unsaved runtime changes).")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        func run() throws { try connection.send("reload") }
    }

    struct Dump: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "The effective configuration, secrets redacted.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        func run() throws { try connection.send("dump") }
    }

    struct Save: CtlSubcommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the running configuration, runtime changes included, back to the file (the old one is kept as FILE.bak).",
            discussion: "Comments and layout of the file are not kept; ${VAR} references are.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @Argument(help: "Write here instead; the file then stays as it is.") var path: String?
        func run() throws {
            // loom's working directory is not the caller's: a relative path is made absolute here.
            let absolute = path.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            try connection.send("save", absolute.map { [("path", ConfigFragment.quoted($0))] } ?? [])
        }
    }

    struct Send: CtlSubcommand {
        static let configuration = CommandConfiguration(abstract: "Send one raw JSON request line and print the result.")
        @ParentCommand var ctl: Ctl
        @OptionGroup var own: Connection
        @Argument(help: "The request, e.g. '{\"command\": \"status\"}'.") var request: String
        func run() throws { try connection.send(line: request) }
    }
}

/// A `loom ctl` subcommand: its own connection options, with the parent's where it has none.
protocol CtlSubcommand: ParsableCommand {
    var ctl: Ctl { get }
    var own: Ctl.Connection { get }
}

extension CtlSubcommand {
    var connection: Ctl.Connection { own.merged(ctl.connection) }
}
