import Foundation
import LoomConfig
import LoomSupervision
import Logging
import Subprocess
import Synchronization
import SystemPackage

/// One run of a supervised command (the I/O leaf of `ProcessSupervisor`): spawns it with
/// swift-subprocess, logs its standard output and error line by line under the upstream's
/// name, and reports its pid and, once reaped, how it ended.
///
/// - The child leads a process group of its own, so the stop signal and SIGKILL reach what
///   it forks too (`kill(-pid, …)`). Once it has exited, whatever is left in its group (a
///   crashed Puma master's workers, a worker that ignored the stop signal) is killed, as
///   systemd's `KillMode=mixed` does: nothing it started outlives it.
/// - It runs under `setpriv --pdeathsig KILL`, which asks the kernel to kill it when loom
///   dies, even by SIGKILL. The kernel ties that to the thread that spawned it:
///   swift-subprocess spawns from one worker thread that lives as long as the process.
///   What it forks does not inherit that: a `GroupWatchdog` kills its group then.
/// - Its environment is loom's plus `env`; loom's ignored signals are reset to their
///   defaults (swift-subprocess spawns with POSIX_SPAWN_SETSIGDEF).
enum ChildProcess {
    enum Event: Sendable {
        case spawned(pid: Int32)
        case spawnFailed(String)
        case exited(SupervisedProcess.ExitStatus)
    }

    /// `setpriv`, from util-linux; without it a child outlives a SIGKILLed loom.
    static let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first { access($0, X_OK) == 0 }

    /// Starts `settings.command`; `events` hears `spawned` then `exited`, or `spawnFailed`.
    static func launch(_ settings: ProcessSettings, name: String, logger: Logger, events: @escaping @Sendable (Event) -> Void) {
        Task {
            guard let executable = executable(settings.command, in: settings.workingDirectory, environment: settings.environment) else {
                return events(.spawnFailed("command \"\(settings.command)\" not found (or not executable)"))
            }
            var arguments = settings.args
            var program = executable
            if let setpriv {
                arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
                program = setpriv
            }
            var options = PlatformOptions()
            options.processGroupID = 0
            var updates: [Environment.Key: String?] = [:]
            for variable in settings.environment { updates[Environment.Key(stringLiteral: variable.name)] = variable.value }
            let pid = Mutex<Int32?>(nil)
            let watchdog = Mutex<GroupWatchdog?>(nil)
            do {
                let result = try await Subprocess.run(
                    .path(FilePath(program)), arguments: Arguments(arguments), environment: .inherit.updating(updates),
                    workingDirectory: settings.workingDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .none, output: .sequence, error: .sequence
                ) { execution in
                    pid.withLock { $0 = execution.processIdentifier.value }
                    watchdog.withLock { $0 = GroupWatchdog(group: execution.processIdentifier.value) }
                    events(.spawned(pid: execution.processIdentifier.value))
                    async let output: Void = log(execution.standardOutput, "stdout", name: name, logger: logger)
                    async let error: Void = log(execution.standardError, "stderr", name: name, logger: logger)
                    _ = await (output, error)
                }
                // Reaped just now: the group still exists if anything is left in it (and while
                // it does, the kernel does not hand its id out as a pid again).
                if kill(-result.processIdentifier.value, SIGKILL) == 0 {
                    logger.notice("killed what the process left in its process group", metadata: ["process": .string(name)])
                }
                // Before the exit is reported: loom may be gone soon after the last one.
                watchdog.withLock { $0?.release() }
                switch result.terminationStatus {
                case .exited(let code): events(.exited(.exited(code)))
                case .signaled(let signal): events(.exited(.signaled(signal)))
                }
            } catch {
                guard let spawned = pid.withLock({ $0 }) else { return events(.spawnFailed("\(error)")) }
                // Watching the child failed after it started (swift-subprocess could not wait
                // for or reap it): make sure it is gone, and report it as failed.
                _ = kill(-spawned, SIGKILL)
                watchdog.withLock { $0?.release() }
                events(.exited(.lost("\(error)")))
            }
        }
    }

    /// Logs each line of one pipe until it closes. Reading goes on to the end whatever the
    /// lines hold, so the child never blocks on a full pipe.
    private static func log(_ pipe: SubprocessOutputSequence, _ stream: String, name: String, logger: Logger) async {
        var lines = OutputLines()
        let metadata: Logger.Metadata = ["process": .string(name), "stream": .string(stream)]
        do {
            for try await buffer in pipe {
                let read = buffer.withUnsafeBytes { lines.read($0) }
                for line in read { logger.info("\(line)", metadata: metadata) }
            }
        } catch {
            logger.warning("reading the process's output failed", metadata: metadata.merging(["error": .string("\(error)")]) { $1 })
        }
        if let last = lines.finish() { logger.info("\(last)", metadata: metadata) }
    }

    /// `command` as a path to run: itself when it names a file (has a `/`; a relative one is
    /// in the child's working directory), else the first executable of that name on the
    /// child's PATH.
    static func executable(_ command: String, in directory: String?, environment: [HeaderPair]) -> String? {
        if command.contains("/") {
            let path = command.hasPrefix("/") ? command : directory.map { "\($0)/\(command)" } ?? command
            return access(path, X_OK) == 0 ? path : nil
        }
        let path = environment.last { $0.name == "PATH" }?.value ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(command)"
            var status = stat()
            if access(candidate, X_OK) == 0, stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG { return candidate }
        }
        return nil
    }
}
