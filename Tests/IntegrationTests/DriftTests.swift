import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 9: what `apply` from cron corrects, each on the real engine: the live container removed,
/// stopped, killed, or replaced by hand with another image or other settings under reconcile's
/// labels; surplus backups. A container reconcile did not make is reported, never touched.
@Suite(.timeLimit(.minutes(3)))
struct DriftTests {
    enum Drift: String, CaseIterable, Sendable {
        case removed, stopped, killed, anotherImageWithCopiedLabels, otherSettingsWithCopiedLabels, disconnected
    }

    @Test(arguments: Drift.allCases)
    func driftIsCorrected(_ drift: Drift) async throws {
        try await ApplyIntegrationTests().scene { scene in
            _ = try scene.write(image: "v1", extra: ApplyIntegrationTests.fastGate + "\nenv: {LOG_LEVEL: info}")
            #expect(await scene.apply().code == 0)
            let engine = scene.fixture.engine
            let live = try #require(try await engine.inspectContainer(scene.name))
            var expected = ""
            switch drift {
            case .removed:
                try await engine.removeContainer(live.id, force: true)
                expected = "+ create"
            case .stopped:
                try await engine.stopContainer(live.id, timeout: .seconds(1))
                expected = "state: exited → running"
            case .killed:
                #expect(await Spawn.finished(try Spawn.start("/usr/bin/env", ["docker", "kill", live.id])) == 0)
                _ = try await scene.fixture.wait(for: live.id) { $0.state == .exited }
                expected = "state: exited → running"
            case .disconnected:
                // Running, but on no network: it answers nothing (found by an attack helper).
                let disconnect = try Spawn.start(
                    "/usr/bin/env", ["docker", "network", "disconnect", "bridge", live.id])
                #expect(await Spawn.finished(disconnect) == 0)
                expected = "network: none (disconnected by hand) → bridge"
            case .anotherImageWithCopiedLabels, .otherSettingsWithCopiedLabels:
                try await engine.removeContainer(live.id, force: true)
                let other = drift == .anotherImageWithCopiedLabels
                let creation = ContainerCreation(
                    name: scene.name, image: other ? "reconcile-fixture:v2" : "reconcile-fixture:v1",
                    environment: [("LOG_LEVEL", other ? "info" : "debug")], command: nil, labels: live.labels,
                    port: PublishedPort(hostIP: "0.0.0.0", hostPort: scene.port, containerPort: 8080),
                    restart: .unlessStopped, memory: nil, cpus: nil, stopTimeout: .seconds(2), healthcheck: nil)
                try await engine.startContainer(try await engine.createContainer(creation))
                expected =
                    other
                    ? "image: reconcile-fixture:v2 (changed by hand) → reconcile-fixture:v1"
                    : "env.LOG_LEVEL: debug (changed by hand) → info"
            }
            let run = await scene.apply()
            #expect(run.code == 0, "\(run.stdout)\(run.stderr)")
            #expect(run.stdout.contains(expected), "\(run.stdout)")
            #expect(try await scene.health().contains(#""version":"v1""#))
            let again = await scene.apply()
            #expect(
                again.stdout.contains("in sync, nothing to do"), "a corrected environment is in sync: \(again.stdout)")
        }
    }

    @Test func surplusBackupsArePrunedAndAForeignContainerIsOnlyReported() async throws {
        try await ApplyIntegrationTests().scene { scene in
            for image in ["v1", "v2", "v1", "v2"] {
                _ = try scene.write(image: image)
                #expect(await scene.apply().code == 0)
            }
            _ = try scene.write(image: "v2", extra: ApplyIntegrationTests.fastGate + "\nbackups: 1")
            let pruned = await scene.apply()
            #expect(pruned.code == 0)
            #expect(pruned.stdout.contains("backup beyond the 1 kept"), "\(pruned.stdout)")
            #expect(try await scene.containers().count == 2)

            // A container reconcile did not make holds the name: reported as a conflict, left running.
            for container in try await scene.containers() {
                try await scene.fixture.engine.removeContainer(container.id, force: true)
            }
            let foreign = try await scene.fixture.foreign(name: scene.name, port: try scene.fixture.freePort())
            let run = await scene.apply()
            #expect(run.code == 1)
            #expect(run.stderr.contains("was not created by reconcile; reconcile will not touch it"), "\(run.stderr)")
            #expect(try await scene.fixture.engine.inspectContainer(foreign)?.state == .running)
            try await scene.fixture.engine.removeContainer(foreign, force: true)
        }
    }
}
