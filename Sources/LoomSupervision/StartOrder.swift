/// The order supervised processes start in (dependencies first) and stop in (the reverse),
/// from each process's `depends_on`.
///
/// Processes with no order between them keep their order in the configuration, so the same
/// file always starts the same way. A dependency on an unknown process, or a cycle, is an
/// error naming it: the configuration is refused before anything starts.
public struct StartOrder: Sendable, Equatable {
    /// Names, each after everything it depends on.
    public let names: [String]

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case unknownDependency(process: String, dependency: String)
        case selfDependency(String)
        /// The processes of one cycle, in dependency order, the first repeated at the end.
        case cycle([String])

        public var description: String {
            switch self {
            case .unknownDependency(let process, let dependency):
                "process \"\(process)\" depends on \"\(dependency)\", which is not a supervised process"
            case .selfDependency(let process):
                "process \"\(process)\" depends on itself"
            case .cycle(let names):
                "processes depend on each other in a cycle: " + names.map { "\"\($0)\"" }.joined(separator: " → ")
            }
        }
    }

    /// `processes`: names in configuration order, with what each depends on.
    public init(_ processes: [(name: String, dependsOn: [String])]) throws(Problem) {
        let known = Set(processes.map(\.name))
        for process in processes {
            for dependency in process.dependsOn {
                if dependency == process.name { throw .selfDependency(process.name) }
                if !known.contains(dependency) { throw .unknownDependency(process: process.name, dependency: dependency) }
            }
        }
        // Kahn's algorithm, always taking the earliest process (in file order) whose
        // dependencies have all been placed.
        var placed: Set<String> = []
        var order: [String] = []
        while order.count < processes.count {
            guard let next = processes.first(where: { !placed.contains($0.name) && $0.dependsOn.allSatisfy(placed.contains) }) else {
                throw .cycle(Self.cycle(in: processes.filter { !placed.contains($0.name) }))
            }
            placed.insert(next.name)
            order.append(next.name)
        }
        names = order
    }

    /// The reverse of `names`: dependents stop before what they depend on.
    public var stopOrder: [String] { names.reversed() }

    /// One cycle among `remaining` (every one of which waits on another of them): follow
    /// first dependencies from the first process until a name repeats.
    private static func cycle(in remaining: [(name: String, dependsOn: [String])]) -> [String] {
        let waiting = Set(remaining.map(\.name))
        var path: [String] = []
        var current = remaining[0].name
        while !path.contains(current) {
            path.append(current)
            // Every remaining process has a dependency among the remaining ones.
            current = remaining.first { $0.name == current }!.dependsOn.first(where: waiting.contains)!
        }
        return Array(path[path.firstIndex(of: current)!...]) + [current]
    }
}
