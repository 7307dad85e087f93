import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// The real binary is SIGKILLed at each named step of a replace (RECONCILE_TEST_ABORT_AT); the
/// next apply must converge: exactly one active container, the backup not lost, no leftovers.
@Suite(.timeLimit(.minutes(2)))
struct CrashSafetyTests {
    /// The `reconcile` executable built beside the test bundle.
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("reconcile")
            .path
    }

    @Test(arguments: StopStartStrategy.Step.allCases)
    func killedAtAStepTheNextApplyConverges(_ step: StopStartStrategy.Step) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "build the reconcile executable first")
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let state = workspace.root.appendingPathComponent("state").path
            let port = try fixture.freePort()
            let file = "\(workspace.environments)/staging.yml"
            let name = "\(fixture.service)-staging"
            let environment = ["RECONCILE_STATE_DIR": state]
            func write(_ image: String) throws {
                try workspace.write(
                    "environments/staging.yml",
                    fixture.yaml(image: "reconcile-fixture:\(image)", port: port, extra: ApplyIntegrationTests.fastGate)
                )
            }
            try write("v1")
            #expect(await fixture.run(["apply", file], environment: environment).code == 0)

            let failing = step == .duringRollback
            try write(failing ? "unhealthy-404" : "v2")
            let pid = try Spawn.start(
                Self.binary, ["apply", file],
                environment: environment.merging(["RECONCILE_TEST_ABORT_AT": step.rawValue]) { $1 })
            #expect(await Spawn.finished(pid) == -1, "the apply was not killed at \(step.rawValue)")

            let recovery = await fixture.run(["apply", file], environment: environment)
            #expect(recovery.code == (failing ? 3 : 0), "\(recovery.stdout)\n\(recovery.stderr)")
            #expect(recovery.stdout.contains("was interrupted at step"), "\(recovery.stdout)")
            if step == .afterGate {
                // It had passed its gate: it takes the active name without another gate.
                #expect(recovery.stdout.contains("had passed its gate; it is now \(name)"), "\(recovery.stdout)")
            }

            let mine = try await fixture.engine.containers().filter { $0.name.hasPrefix(name) }
            let active = mine.filter { $0.name == name }
            #expect(active.count == 1)
            #expect(active.first?.state == .running)
            #expect(active.first?.image == "reconcile-fixture:\(failing ? "v1" : "v2")")
            #expect(
                mine.allSatisfy { $0.name == name || $0.name.hasPrefix("\(name)-backup-") },
                "leftovers: \(mine.map(\.name))")
            if !failing { #expect(mine.contains { $0.image == "reconcile-fixture:v1" }, "the v1 backup was lost") }
            let (_, body) = try await fixture.get(port: port, path: "/health")
            #expect(body.contains(failing ? #""version":"v1""# : #""version":"v2""#))

            for container in mine { try await fixture.engine.removeContainer(container.id, force: true) }
        }
    }

    @Test func sigtermFinishesTheCurrentEnvironmentThenStops() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "build the reconcile executable first")
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let state = workspace.root.appendingPathComponent("state").path
            let log = workspace.root.appendingPathComponent("apply.log").path
            try workspace.write(
                "environments/a.yml",
                fixture.yaml(
                    environment: "a", image: "reconcile-fixture:slow", port: try fixture.freePort(),
                    extra: "health: {startup: 10s, interval: 1s, attempts: 3}"))
            try workspace.write("environments/b.yml", fixture.yaml(environment: "b", port: try fixture.freePort()))
            let pid = try Spawn.start(
                Self.binary, ["apply", workspace.environments], environment: ["RECONCILE_STATE_DIR": state], output: log
            )
            // Once a's deploy is under way (on a loaded machine the binary itself can take seconds to start).
            try await Spawn.waitFor("a: create", in: log)
            let sent = kill(pid, SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let signals = threads.map { thread in
                let status = (try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/status", encoding: .utf8)) ?? ""
                return status.split(separator: "\n").filter {
                    $0.hasPrefix("Sig") || $0.hasPrefix("Name") || $0.hasPrefix("ShdPnd") || $0.hasPrefix("State")
                        || $0.hasPrefix("PPid") || $0.hasPrefix("Tgid")
                }.joined(separator: " ")
            }
            #expect(await Spawn.finished(pid) == 143, "kill: \(sent); \(signals.joined(separator: "\n"))")
            let text = try String(contentsOfFile: log, encoding: .utf8)
            #expect(text.contains("received SIGTERM; finishing a safely, then stopping"), "\(text)")
            #expect(text.contains("a: result converged"))
            #expect(text.contains("not applied: b (\(workspace.environments)/b.yml)"), "\(text)")
            #expect(text.contains("Apply: 1 converged, 1 not applied."), "\(text)")
            let a = try await fixture.engine.inspectContainer("\(fixture.service)-a")
            let b = try await fixture.engine.inspectContainer("\(fixture.service)-b")
            #expect(a?.state == .running)
            #expect(b == nil)
            if let a { try await fixture.engine.removeContainer(a.id, force: true) }
        }
    }
}
