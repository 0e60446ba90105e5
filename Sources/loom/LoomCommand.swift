import ArgumentParser
import LoomConfig
import LoomProxy

/// The `loom` command line: `run` (the default), `validate`, `explain`, `plugin`, `ctl` and `version`.
@main
struct LoomCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loom",
        abstract: "A reverse proxy and API gateway.",
        discussion: """
            Configuration comes from, in order: --config FILE, $LOOM_CONFIG, $WARPDRIVE_CONFIG, \
            or simple mode (LOOM_TARGET_HOST/LOOM_TARGET_PORT or WARPDRIVE_TARGET_*). \
            Files ending in .yaml/.yml are Loom YAML, .toml is WarpDrive TOML.

            Examples:
              loom run --config examples/gateway.yaml
              loom --config warpdrive.toml --log-format text
              WARPDRIVE_TARGET_HOST=127.0.0.1 WARPDRIVE_TARGET_PORT=3000 loom
              loom validate gateway.yaml
              loom explain --config gateway.yaml GET http://api.example.com/users/42
              loom plugin inspect filter.wasm
              loom ctl --config gateway.yaml status
              loom version
            """,
        version: LoomVersion.current,
        subcommands: [Run.self, Validate.self, Explain.self, Plugin.self, Ctl.self, Version.self],
        defaultSubcommand: Run.self
    )
}

/// `loom version`.
struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print("loom \(LoomVersion.current)")
    }
}
