import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 9: cron every minute must not cycle a bad deploy, stopping the good version each time.
@Suite(.timeLimit(.minutes(3)))
struct CronSafetyTests {
    @Test func aBadCommitAppliedTenTimesCreatesOneContainerAndTheGoodVersionServesThroughout() async throws {
        try await ApplyIntegrationTests().scene { scene in
            _ = try scene.write(image: "v1")
            #expect(await scene.apply().code == 0)
            let good = try #require(try await scene.fixture.engine.inspectContainer(scene.name))
            _ = try scene.write(image: "unhealthy-404")
            let first = await scene.apply()
            #expect(first.code == 3)
            let restored = try #require(try await scene.fixture.engine.inspectContainer(scene.name))

            let stream = scene.fixture.engine.events()
            let prefix = scene.name
            let watcher = Task {
                var seen: [String] = []
                for try await event in stream where event.name?.hasPrefix(prefix) == true { seen.append(event.action) }
                return seen
            }
            try await Task.sleep(for: .milliseconds(200))
            for _ in 0..<9 {
                let again = await scene.apply(["--quiet"])
                #expect(again.code == 6, "\(again.stdout)\(again.stderr)")
                #expect(again.stdout.contains("skipped-known-bad (exit 6)"), "\(again.stdout)")
                #expect(try await scene.health().contains(#""version":"v1""#))
            }
            try await Task.sleep(for: .milliseconds(300))
            watcher.cancel()
            #expect(try await watcher.value.isEmpty, "the later nine applies must not touch a container")
            #expect(try await scene.fixture.engine.inspectContainer(scene.name)?.id == restored.id)
            #expect(restored.image == good.image)

            // --retry tries it (and fails again); a change of the file is tried at once.
            #expect(await scene.apply(["--retry"]).code == 3)
            _ = try scene.write(image: "v2")
            #expect(await scene.apply().code == 0)
        }
    }
}
