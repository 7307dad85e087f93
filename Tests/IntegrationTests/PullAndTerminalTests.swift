import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Pulls from a real registry (a private `docker-registry` per test), and the two things only a
/// terminal shows: pull progress and the approval prompt, with the real binary on a pseudo-terminal.
@Suite(.timeLimit(.minutes(2)))
struct PullAndTerminalTests {
    typealias Scene = ApplyIntegrationTests.Scene

    func withRegistry(_ body: (Scene, Registry) async throws -> Void) async throws {
        try await ApplyIntegrationTests().scene { scene in
            let registry = try await Registry.start(port: try scene.fixture.freePort(), runID: scene.fixture.runID)
            // The containers go first, so that their images can be removed with the registry.
            func finish() async {
                try? await scene.fixture.removeServiceContainers()
                registry.stop()
            }
            do {
                try await body(scene, registry)
            } catch {
                await finish()
                throw error
            }
            await finish()
        }
    }

    func write(_ scene: Scene, image: String, pull: String, extra: String = "") throws {
        try scene.workspace.write(
            "environments/staging.yml",
            scene.fixture.yaml(
                image: image, port: scene.port, extra: "pull: \(pull)\n\(ApplyIntegrationTests.fastGate)\n\(extra)"))
    }

    @Test func pullAlwaysFollowsATagThatMovedAndAPullFailureChangesNothing() async throws {
        try await withRegistry { scene, registry in
            try registry.publish("reconcile-fixture:v1", as: "stable")
            try write(scene, image: registry.reference("stable"), pull: "always")
            let first = await scene.apply()
            #expect(first.code == 0, "\(first.stdout)\n\(first.stderr)")
            #expect(first.stdout.contains("staging: pull pulled \(registry.reference("stable"))"))
            #expect(try await scene.health().contains(#""version":"v1""#))

            // Nothing moved: the pull asks the registry, no container is touched.
            let again = await scene.apply()
            #expect(again.code == 0)
            #expect(again.stdout.contains("in sync, nothing to do"), "\(again.stdout)")
            #expect(!again.stdout.contains("staging: backup"))

            // The tag moves to v2 in the registry: the same file now means a replace.
            try registry.publish("reconcile-fixture:v2", as: "stable")
            let moved = await scene.apply()
            #expect(moved.code == 0, "\(moved.stdout)\n\(moved.stderr)")
            #expect(moved.stdout.contains("staging: backup"))
            #expect(try await scene.health().contains(#""version":"v2""#))

            // A tag the registry does not have: refused before anything running is touched.
            try write(scene, image: registry.reference("missing"), pull: "always")
            let before = try await scene.fixture.engine.inspectContainer(scene.name)
            let failed = await scene.apply()
            #expect(failed.code == 1)
            #expect(failed.stderr.contains("cannot pull \(registry.reference("missing"))"), "\(failed.stderr)")
            #expect(failed.stderr.contains("nothing was changed"))
            let after = try await scene.fixture.engine.inspectContainer(scene.name)
            #expect(after?.id == before?.id)
            #expect(after?.startedAt == before?.startedAt)
            #expect(try await scene.health().contains(#""version":"v2""#))
            #expect(try scene.journal().last?.result == "refused")
        }
    }

    @Test func pullProgressIsDrawnOnATerminalOnly() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary), "build reconcile first")
        try await withRegistry { scene, registry in
            try registry.publish("reconcile-fixture:v1", as: "fresh")
            try write(scene, image: registry.reference("fresh"), pull: "missing")
            let file = "\(scene.workspace.environments)/staging.yml"
            let run = try await TerminalRun.run(
                CrashSafetyTests.binary, ["apply", file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(run.status == 0, "\(run.output)")
            // One redrawn line per update, cleared before the next printed line.
            #expect(run.output.contains("\r\u{1B}[Kstaging: pulling \(registry.reference("fresh")): "), "\(run.output)")
            #expect(run.output.contains("layers done"))
            #expect(run.output.contains("staging: pull pulled \(registry.reference("fresh"))"))

            // Without a terminal (cron, CI) the same pull prints no progress line.
            _ = await Spawn.finished(try Spawn.start(Registry.docker, ["rm", "-f", scene.name]))
            _ = await Spawn.finished(try Spawn.start(Registry.docker, ["rmi", registry.reference("fresh")]))
            let piped = await scene.apply()
            #expect(piped.code == 0, "\(piped.stderr)")
            #expect(piped.stdout.contains("staging: pull pulled"))
            #expect(!piped.stdout.contains("layers done") && !piped.stderr.contains("layers done"))
        }
    }

    @Test func approvalIsAskedOnATerminal() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary), "build reconcile first")
        try await ApplyIntegrationTests().scene { scene in
            let file = try scene.write(image: "v1", extra: ApplyIntegrationTests.fastGate + "\napproval: required")
            let environment = ["RECONCILE_STATE_DIR": scene.state]

            let declined = try await TerminalRun.run(
                CrashSafetyTests.binary, ["apply", file], environment: environment, input: "n\n")
            #expect(declined.status == 7)
            #expect(declined.output.contains("Apply the plan above to staging? [y/N]"), "\(declined.output)")
            #expect(
                declined.output.contains(
                    "staging: result declined (exit 7): skipped: you declined; nothing was changed"))
            #expect(try await scene.fixture.engine.inspectContainer(scene.name) == nil)

            let approved = try await TerminalRun.run(
                CrashSafetyTests.binary, ["apply", file], environment: environment, input: "yes\n")
            #expect(approved.status == 0, "\(approved.output)")
            #expect(approved.output.contains("staging: result converged"))
            #expect(try await scene.health().contains(#""version":"v1""#))
        }
    }
}
