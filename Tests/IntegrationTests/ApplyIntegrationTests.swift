import Foundation
import ReconcileCore
import ReconcileSystem
import ReconcileTestSupport
import Testing

/// `reconcile apply` against the real engine with the fixture images, one scenario per test.
@Suite(.timeLimit(.minutes(2)))
struct ApplyIntegrationTests {
    /// A quick gate for tests that still holds on a loaded 2-core machine: failures count after
    /// 2s, then 3 attempts 300ms apart.
    static let fastGate = """
        health: {path: /health, expect_json: {status: healthy}, startup: 2s, interval: 300ms, attempts: 3, timeout: 1s}
        smoke: [{path: /items}, {path: /}]
        """

    struct Scene {
        let fixture: EngineFixture
        let workspace: Workspace
        let port: Int
        let state: String

        func write(image: String, extra: String = ApplyIntegrationTests.fastGate) throws -> String {
            try workspace.write(
                "environments/staging.yml", fixture.yaml(image: "reconcile-fixture:\(image)", port: port, extra: extra))
        }

        func apply(_ extra: [String] = []) async -> CommandRun {
            await fixture.run(
                ["apply"] + extra + ["\(workspace.environments)/staging.yml"],
                environment: ["RECONCILE_STATE_DIR": state])
        }

        func health() async throws -> String { try await fixture.get(port: port, path: "/health").1 }
        /// This scene's containers: the active one and its backups.
        func containers() async throws -> [ContainerSnapshot] {
            try await fixture.engine.containers().filter { $0.name.hasPrefix(name) }
        }

        var name: String { "\(fixture.service)-staging" }

        func journal() throws -> [JournalEntry] {
            let text = try String(contentsOfFile: "\(state)/journal.jsonl", encoding: .utf8)
            return try text.split(separator: "\n").map {
                try JSONDecoder().decode(JournalEntry.self, from: Data($0.utf8))
            }
        }
    }

    func scene(_ body: (Scene) async throws -> Void) async throws {
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let state = workspace.root.appendingPathComponent("state").path
            let scene = Scene(fixture: fixture, workspace: workspace, port: try fixture.freePort(), state: state)
            try await body(scene)
            try await fixture.removeServiceContainers()
        }
    }

    @Test func firstDeployThenANoOpThatTouchesNothing() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            let first = await scene.apply()
            #expect(first.code == 0, "\(first.stderr)")
            #expect(first.stdout.contains("staging: gate health /health ok after"))
            #expect(try await scene.health().contains(#""version":"v1""#))

            let stream = scene.fixture.engine.events()
            let service = scene.fixture.service
            let watcher = Task {
                var seen: [String] = []
                for try await event in stream where event.name?.hasPrefix(service) == true { seen.append(event.action) }
                return seen
            }
            try await Task.sleep(for: .milliseconds(200))
            let again = await scene.apply()
            #expect(again.code == 0)
            #expect(again.stdout.contains("in sync, nothing to do"))
            try await Task.sleep(for: .milliseconds(300))
            watcher.cancel()
            #expect(try await watcher.value.isEmpty)
            #expect(try scene.journal().count == 1)
        }
    }

    @Test func v1ToV2KeepsABackupAndJournalsOldAndNew() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            #expect(await scene.apply().code == 0)
            _ = try scene.write(image: "v2")
            let run = await scene.apply()
            #expect(run.code == 0, "\(run.stderr)")
            #expect(try await scene.health().contains(#""version":"v2""#))
            let names = try await scene.fixture.engine.containers().map(\.name).filter { $0.hasPrefix(scene.name) }
            #expect(names.count == 2)
            #expect(names.contains { $0.hasPrefix("\(scene.name)-backup-") })
            let last = try #require(try scene.journal().last)
            #expect(last.oldImage == "reconcile-fixture:v1")
            #expect(last.newImage == "reconcile-fixture:v2")
            #expect(last.result == "converged")
            #expect(last.exitCode == 0)
        }
    }

    @Test(arguments: [
        ("unhealthy-404", "GET /health returned 404, expected 200"),
        ("unhealthy-500", "GET /health returned 500, expected 200"),
        ("degraded", #"JSON field status is "degraded", expected "healthy""#),
    ])
    func failingGateRollsBackToV1(_ image: String, _ reason: String) async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            #expect(await scene.apply().code == 0)
            _ = try scene.write(image: image)
            let run = await scene.apply()
            #expect(run.code == 3)
            #expect(run.stderr.contains(reason), "\(run.stderr)")
            #expect(run.stderr.contains("serves again"))
            #expect(try await scene.health().contains(#""version":"v1""#))
            let active = try await scene.fixture.engine.inspectContainer(scene.name)
            #expect(active?.image == "reconcile-fixture:v1")
            #expect(try scene.journal().last?.result == "rolled-back")
        }
    }

    @Test func crashingImageFailsFastWithItsExitCodeAndLogs() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            #expect(await scene.apply().code == 0)
            // A long budget: the gate must not wait it out.
            _ = try scene.write(image: "crash", extra: "health: {startup: 30s, interval: 5s, attempts: 10}")
            let started = ContinuousClock.now
            let run = await scene.apply()
            #expect(run.code == 3)
            // The budget is 30s + 10 × 5s; the crash (1s after start) must end the gate long before even
            // the 30s startup is over: the gate reports when it saw the exit, and that is seconds, not 30.
            // The whole apply (stop, start, rollback) takes about 2.5 s on a quiet machine; 9 s and then
            // 21 s were seen with every other test running beside it on 2 cores: it is bounded by the
            // budget it must not wait out (80 s), the gate's own figure by the startup.
            #expect(ContinuousClock.now - started < .seconds(80))
            let seen = run.stderr.firstMatch(of: /exited[^\n]* ([0-9.]+)(ms|s) after start/)
            let after = seen.flatMap { match in
                Double(String(match.output.1)).map { match.output.2 == "ms" ? $0 / 1000 : $0 }
            }
            #expect(after.map { $0 < 15 } == true, "\(run.stderr)")
            // The restart policy (unless-stopped) restarts it after 100 ms: seen in that window the code
            // is known; seen after the restart (a loaded machine), the engine reports code 0, so
            // reconcile names the restart instead.
            #expect(
                run.stderr.contains("container exited with code 3")
                    || run.stderr.contains("container exited unexpectedly and was restarted by its restart policy"),
                "\(run.stderr)")
            #expect(run.stderr.contains("fatal: cannot connect to database"))
            #expect(try await scene.health().contains(#""version":"v1""#))
        }
    }

    @Test func slowStartWithinStartupSucceeds() async throws {
        try await scene { scene in
            _ = try scene.write(image: "slow", extra: "health: {startup: 8s, interval: 1s, attempts: 3}")
            let run = await scene.apply()
            #expect(run.code == 0, "\(run.stderr)")
            #expect(try await scene.health().contains(#""version":"slow""#))
        }
    }

    @Test func smokeFailureRollsBack() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            #expect(await scene.apply().code == 0)
            _ = try scene.write(image: "v2", extra: "smoke: [{path: /missing}]")
            let run = await scene.apply()
            #expect(run.code == 3)
            #expect(run.stderr.contains("smoke GET /missing returned 404, expected 200"))
            #expect(try await scene.health().contains(#""version":"v1""#))
        }
    }

    @Test func firstDeployThatFailsLeavesNothingRunning() async throws {
        try await scene { scene in
            _ = try scene.write(image: "unhealthy-404")
            let run = await scene.apply()
            #expect(run.code == 3)
            #expect(run.stderr.contains("there was no earlier version to restore; nothing of it runs now"))
            let left = try await scene.containers()
            #expect(left.isEmpty)
        }
    }

    @Test func portHeldByAContainerWeDoNotManageIsRefused() async throws {
        try await scene { scene in
            try await scene.fixture.foreign(name: "\(scene.fixture.runID)-squatter", port: scene.port)
            _ = try scene.write(image: "v1")
            let run = await scene.apply()
            #expect(run.code == 1)
            #expect(run.stderr.contains("refused: host port \(scene.port) is published by container"))
            let ours = try await scene.containers()
            #expect(ours.isEmpty)
        }
    }

    @Test func approvalIsRequiredWithoutATerminal() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1", extra: ApplyIntegrationTests.fastGate + "\napproval: required")
            let refused = await scene.apply()
            #expect(refused.code == 7)
            #expect(
                refused.stderr.contains(
                    "skipped: staging requires approval; nothing of it runs now; re-run with --approve"))
            let ours = try await scene.containers()
            #expect(ours.isEmpty)
            #expect(await scene.apply(["--approve"]).code == 0)
        }
    }

    @Test func backupsArePrunedToTheDeclaredCount() async throws {
        try await scene { scene in
            for image in ["v1", "v2", "v1", "v2"] {
                _ = try scene.write(image: image, extra: ApplyIntegrationTests.fastGate + "\nbackups: 1")
                let run = await scene.apply()
                #expect(run.code == 0, "\(run.stderr)")
            }
            let names = try await scene.fixture.engine.containers().map(\.name).filter { $0.hasPrefix(scene.name) }
            #expect(names.count == 2)
        }
    }

    @Test func aSecondApplyWaitsForTheLockThenGivesUpNamingTheHolder() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            let lock = EngineLock(
                engine: scene.fixture.engine, identity: LiveProcessIdentity(), clock: SystemClock(),
                wallClock: { Date() })
            let lease = try await lock.acquire(scene.fixture.spec(port: scene.port), ttl: .seconds(60), timeout: .zero)
            let run = await scene.apply(["--lock-timeout", "300ms"])
            #expect(run.code == 1)
            #expect(run.stdout.contains("staging: lock waiting for the lock: another apply holds it (pid \(getpid())"))
            #expect(run.stderr.contains("another apply holds the lock \(scene.name).lock (pid \(getpid())"))
            try await lock.release(lease)
            #expect(await scene.apply().code == 0)
        }
    }

    @Test func jsonOutputIsOneEventPerLine() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            let run = await scene.apply(["--output", "json"])
            #expect(run.code == 0)
            let events = try run.stdout.split(separator: "\n").map {
                try JSONDecoder().decode(DeployEvent.self, from: Data($0.utf8))
            }
            #expect(events.map(\.step) == ["create", "start", "gate", "gate", "gate", "promote", "result"])
            #expect(events.last?.message.hasPrefix("converged (exit 0)") == true)
            #expect(events.allSatisfy { $0.environment == "staging" })
        }
    }

    @Test func anUnwritableJournalIsReportedAndDoesNotBlockTheDeploy() async throws {
        try await scene { scene in
            _ = try scene.write(image: "v1")
            try FileManager.default.createDirectory(
                atPath: "\(scene.state)/journal.jsonl", withIntermediateDirectories: true)
            let run = await scene.apply()
            #expect(run.code == 0)
            #expect(run.stderr.contains("staging: journal cannot open journal.jsonl in the state directory"))
            #expect(try await scene.health().contains(#""version":"v1""#))
        }
    }

    @Test func secretsReachNeitherOutputNorJournal() async throws {
        try await scene { scene in
            let secret = "s3cret-\(scene.fixture.runID)"
            _ = try scene.write(image: "v1", extra: ApplyIntegrationTests.fastGate + "\nsecrets: [API_TOKEN]")
            let refused = await scene.apply()
            #expect(refused.code == 1)
            #expect(refused.stderr.contains("secret API_TOKEN not set"))
            let run = await scene.fixture.run(
                ["apply", "\(scene.workspace.environments)/staging.yml"],
                environment: ["RECONCILE_STATE_DIR": scene.state, "API_TOKEN": secret])
            #expect(run.code == 0, "\(run.stderr)")
            let journal = try String(contentsOfFile: "\(scene.state)/journal.jsonl", encoding: .utf8)
            #expect(!run.stdout.contains(secret) && !run.stderr.contains(secret) && !journal.contains(secret))
            let labels = try await scene.fixture.engine.inspectContainer(scene.name)?.labels ?? [:]
            #expect(!labels.values.contains { $0.contains(secret) })
        }
    }
}
