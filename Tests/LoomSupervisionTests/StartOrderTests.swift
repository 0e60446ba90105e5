import Testing

@testable import LoomSupervision

@Suite struct StartOrderTests {
    @Test func dependenciesFirstOtherwiseFileOrder() throws {
        let order = try StartOrder([
            (name: "web", dependsOn: ["cable", "db"]),
            (name: "sidekiq", dependsOn: []),
            (name: "cable", dependsOn: ["db"]),
            (name: "db", dependsOn: []),
        ])
        #expect(order.names == ["sidekiq", "db", "cable", "web"])
        #expect(order.stopOrder == ["web", "cable", "db", "sidekiq"])
        #expect(try StartOrder([]).names == [])
        #expect(try StartOrder([(name: "a", dependsOn: []), (name: "b", dependsOn: [])]).names == ["a", "b"])
    }

    @Test func unknownSelfAndCyclicDependenciesAreErrors() {
        #expect(throws: StartOrder.Problem.unknownDependency(process: "web", dependency: "redis")) {
            try StartOrder([(name: "web", dependsOn: ["redis"])])
        }
        #expect(throws: StartOrder.Problem.selfDependency("web")) {
            try StartOrder([(name: "web", dependsOn: ["web"])])
        }
        #expect(throws: StartOrder.Problem.cycle(["a", "b", "c", "a"])) {
            try StartOrder([
                (name: "free", dependsOn: []), (name: "a", dependsOn: ["b"]), (name: "b", dependsOn: ["c"]),
                (name: "c", dependsOn: ["a", "free"]), (name: "d", dependsOn: ["a"]),
            ])
        }
        #expect(
            StartOrder.Problem.cycle(["a", "b", "a"]).description == #"processes depend on each other in a cycle: "a" → "b" → "a""#)
    }
}
