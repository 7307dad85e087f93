import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

struct DeployerTests {
    let image = ImageSnapshot(id: "sha256:1111")

    func deploy(
        _ desired: DesiredEnvironment, engine: FakeEngine, probe: ScriptedProbe = .healthy(),
        clock: ManualClock = ManualClock(),
        progress: @escaping @Sendable (String, String, Bool) -> Void = { _, _, _ in }
    ) async throws -> (DeployOutcome, [DeployEvent]) {
        let host = HostState(
            containers: try await engine.containers(), images: ["acme/app:v1": image, "acme/app:v0": image])
        let plan = Differ.plan(desired, host: host)
        let log = EventLog()
        var context = DeployContext(
            engine: engine, probe: probe, clock: clock, report: { log.record($0) },
            wallClock: { Date(timeIntervalSince1970: 1_800_000_000) })
        context.pullProgress = progress
        let outcome = await Deployer().apply(desired, plan: plan, host: host, revision: "abc", context: context)
        return (outcome, log.all)
    }

    /// The failure a rollback reports; records an issue when `outcome` is not a rollback.
    func rollbackFailure(_ outcome: DeployOutcome, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String?
    {
        guard case .rolledBack(let failure, _) = outcome else {
            Issue.record("expected a rollback, got \(outcome)", sourceLocation: sourceLocation)
            return nil
        }
        return failure
    }

    var spec: EnvironmentSpec {
        var spec = Build.spec()
        spec.smoke = [SmokeCheck(path: "/items")]
        return spec
    }

    @Test func firstDeployCreatesStartsAndGates() async throws {
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let (outcome, events) = try await deploy(DesiredEnvironment(spec: spec), engine: engine)
        #expect(outcome == .converged("acme/app:v1 serving on port 18001"))
        #expect(events.map(\.step) == ["create", "start", "gate", "gate"])
        #expect(events[2].message == "health /health ok after 0.0 s (attempt 1)")
        let running = await engine.container(named: "app-staging")
        #expect(running?.state == .running)
        #expect(running?.labels[Labels.revision] == "abc")
    }

    @Test func inSyncDoesNothing() async throws {
        let desired = DesiredEnvironment(spec: spec)
        let engine = FakeEngine(containers: [Build.container(desired)], images: ["acme/app:v1": image])
        let (outcome, events) = try await deploy(desired, engine: engine)
        #expect(outcome == .unchanged)
        #expect(events.isEmpty)
        #expect(await engine.mutatingCalls.isEmpty)
    }

    @Test func replaceBacksUpAndPrunes() async throws {
        var old = spec
        old.image = ImageReference(repository: "acme/app", tag: "v0")
        var backups: [ContainerSnapshot] = []
        for index in 1...3 {
            backups.append(
                Build.container(
                    DesiredEnvironment(spec: old), id: "b\(index)", state: .exited,
                    name: "app-staging-backup-2026010\(index)T000000Z"))
        }
        let engine = FakeEngine(
            containers: [Build.container(DesiredEnvironment(spec: old))] + backups, images: ["acme/app:v1": image])
        let (outcome, events) = try await deploy(DesiredEnvironment(spec: spec), engine: engine)
        #expect(outcome == .converged("acme/app:v1 serving on port 18001"))
        #expect(events.first?.message == "app-staging → app-staging-backup-20270115T080000Z")
        #expect(
            events.filter { $0.step == "prune" }.map(\.message) == [
                "removed old backup app-staging-backup-20260101T000000Z"
            ])
        let names = try await engine.containers().map(\.name).sorted()
        #expect(
            names == [
                "app-staging", "app-staging-backup-20260102T000000Z", "app-staging-backup-20260103T000000Z",
                "app-staging-backup-20270115T080000Z",
            ])
    }

    @Test func unhealthyReplaceRollsBackToTheBackup() async throws {
        var old = spec
        old.image = ImageReference(repository: "acme/app", tag: "v0")
        let previous = Build.container(DesiredEnvironment(spec: old))
        let engine = FakeEngine(containers: [previous], images: ["acme/app:v1": image])
        var policy = spec
        policy.health.attempts = 2
        policy.health.startup = .zero
        policy.health.interval = .seconds(1)
        // The new container answers 503; once rolled back, the old one answers 200.
        let probe = ScriptedProbe { path, call in
            path == "/health" && call <= 2 ? HTTPAnswer(status: 503) : HTTPAnswer(status: 200, body: "{}")
        }
        let (outcome, events) = try await deploy(DesiredEnvironment(spec: policy), engine: engine, probe: probe)
        guard case .rolledBack(let failure, let restored) = outcome else {
            Issue.record("expected a rollback, got \(outcome)")
            return
        }
        #expect(
            failure
                == "health /health never passed: 2 probes failed in 1s; last: GET /health returned 503, expected 200")
        #expect(restored == "acme/app:v0 (c0ffee000001) serves again")
        #expect(events.contains { $0.step == "rollback" })
        let active = await engine.container(named: "app-staging")
        #expect(active?.id == previous.id)
        #expect(active?.state == .running)
        #expect(try await engine.containers().count == 1)
    }

    @Test func firstDeployThatFailsLeavesNothingRunning() async throws {
        let engine = FakeEngine(images: ["acme/app:v1": image])
        var policy = spec
        policy.health.attempts = 1
        policy.health.startup = .zero
        let probe = ScriptedProbe { _, _ in HTTPAnswer(status: nil, error: "connection refused") }
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: policy), engine: engine, probe: probe)
        #expect(
            outcome
                == .rolledBack(
                    failure:
                        "health /health never passed: 1 probes failed in 0s; last: GET /health: connection refused",
                    restored: "nothing ran before this deploy; nothing runs now"))
        #expect(try await engine.containers().isEmpty)
    }

    @Test func smokeFailureRollsBack() async throws {
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let probe = ScriptedProbe { path, _ in
            path == "/items" ? HTTPAnswer(status: 500) : HTTPAnswer(status: 200, body: "{}")
        }
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: spec), engine: engine, probe: probe)
        let failure = rollbackFailure(outcome)
        #expect(failure == "smoke GET /items returned 500, expected 200")
    }

    @Test func performanceBoundIsChecked() async throws {
        var slow = spec
        slow.performance = PerformanceCheck()
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let probe = ScriptedProbe { path, call in
            HTTPAnswer(
                status: 200, body: "{}", latency: path == "/health" && call > 1 ? .milliseconds(700) : .milliseconds(5))
        }
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: slow), engine: engine, probe: probe)
        let failure = rollbackFailure(outcome)
        #expect(failure == "performance GET /health p95 700ms over 20 requests, over the 500ms bound")
    }

    @Test func missingSecretOrImageIsRefusedBeforeAnythingChanges() async throws {
        var secret = spec
        secret.secrets = ["TOKEN"]
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: secret), engine: engine)
        #expect(outcome == .refused("secret TOKEN not set (process environment or secrets_file); nothing was changed"))

        var never = spec
        never.image = ImageReference(repository: "acme/other", tag: "v9")
        never.pull = .never
        let (refused, _) = try await deploy(DesiredEnvironment(spec: never), engine: engine)
        #expect(refused == .refused("image acme/other:v9 is not on this host and pull is never; nothing was changed"))

        await engine.fail("pull", with: .pullFailed(reference: "acme/other:v9", message: "manifest unknown"))
        never.pull = .missing
        let (pull, _) = try await deploy(DesiredEnvironment(spec: never), engine: engine)
        #expect(
            pull
                == .refused(
                    "cannot pull acme/other:v9: manifest unknown; check the image name and tag, and registry access; nothing was changed"
                ))
        #expect(await engine.mutatingCalls.allSatisfy { $0.hasPrefix("pull") })
    }

    @Test func pullAlwaysReplacesWhenTheTagMovedInTheRegistry() async throws {
        var always = spec
        always.pull = .always
        let desired = DesiredEnvironment(spec: always)
        let engine = FakeEngine(containers: [Build.container(desired)], images: ["acme/app:v1": image])
        await engine.publish("acme/app:v1", ImageSnapshot(id: "sha256:2222"))
        let progress = Locked<[String]>([])
        let (outcome, events) = try await deploy(desired, engine: engine) { _, line, _ in
            progress.withLock { $0.append(line) }
        }
        #expect(outcome == .converged("acme/app:v1 serving on port 18001"))
        #expect(Array(events.map(\.step).prefix(2)) == ["pull", "backup"])
        #expect(await engine.container(named: "app-staging")?.imageID == "sha256:2222")
        #expect(
            progress.withLock { $0 }
                == [
                    "pulling acme/app:v1: 0/1 layers done, 512 B of 1.0 kB",
                    "pulling acme/app:v1: 1/1 layers done, 1.0 kB of 1.0 kB",
                ])
    }

    @Test func pullAlwaysWithAnUnchangedTagTouchesNoContainer() async throws {
        var always = spec
        always.pull = .always
        let desired = DesiredEnvironment(spec: always)
        let engine = FakeEngine(containers: [Build.container(desired)], images: ["acme/app:v1": image])
        let (outcome, events) = try await deploy(desired, engine: engine)
        #expect(outcome == .unchanged)
        #expect(events.map(\.step) == ["pull"])
        #expect(await engine.mutatingCalls == ["pull acme/app:v1"])

        await engine.fail("pull", with: .pullFailed(reference: "acme/app:v1", message: "connection refused"))
        let (refused, _) = try await deploy(desired, engine: engine)
        #expect(
            refused
                == .refused(
                    "cannot pull acme/app:v1: connection refused; check the image name and tag, and registry access; nothing was changed"
                ))
        #expect(await engine.mutatingCalls == ["pull acme/app:v1", "pull acme/app:v1"])
    }

    @Test func pullTrackerSummarisesLayersAndBytes() {
        var tracker = PullTracker()
        #expect(tracker.summary(of: "app:v2") == "pulling app:v2")
        let lines = [
            PullProgress(id: "v2", status: "Pulling from acme/app"),
            PullProgress(id: "a", status: "Already exists"),
            PullProgress(id: "b", status: "Pulling fs layer"),
            PullProgress(id: "b", status: "Downloading", current: 1_500_000, total: 40_100_000),
        ]
        let milestones = lines.map { tracker.record($0) }
        #expect(milestones == [false, true, true, false])
        #expect(tracker.summary(of: "app:v2") == "pulling app:v2: 1/2 layers done, 1.5 MB of 40.1 MB")
        let downloaded = tracker.record(PullProgress(id: "b", status: "Download complete"))
        let extracted = tracker.record(PullProgress(id: "b", status: "Pull complete"))
        #expect(downloaded && !extracted)
        #expect(tracker.summary(of: "app:v2") == "pulling app:v2: 2/2 layers done, 40.1 MB of 40.1 MB")
        var quiet = PullTracker()
        quiet.record(PullProgress(status: "Digest: sha256:abc"))
        #expect(quiet.summary(of: "app:v2") == "pulling app:v2: Digest: sha256:abc")
        #expect(PullTracker.bytes(2_500_000_000) == "2.5 GB")
    }

    @Test(arguments: [false, true])
    func crashingContainerFailsAtOnceWithOrWithoutARestartPolicy(_ restarts: Bool) async throws {
        var old = spec
        old.image = ImageReference(repository: "acme/app", tag: "v0")
        let previous = Build.container(DesiredEnvironment(spec: old))
        let engine = FakeEngine(containers: [previous], images: ["acme/app:v1": image])
        await engine.crashOnStart(image: "acme/app:v1", code: 3, restarts: restarts)
        var slow = spec
        slow.health.startup = .seconds(30)
        let clock = ManualClock()
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: slow), engine: engine, clock: clock)
        #expect(
            rollbackFailure(outcome)
                == (restarts
                    ? "container exited unexpectedly and was restarted by its restart policy (1 time) 0s after start"
                    : "container exited with code 3 0s after start"))
        #expect(clock.now() < .seconds(1), "the gate waited instead of failing at once")
        #expect(await engine.container(named: "app-staging")?.id == previous.id)
    }

    @Test func judgeComparesJSONFields() {
        var policy = HealthPolicy()
        policy.expectJSON = ["status": "healthy", "ready": "true"]
        let good = Judge.health(HTTPAnswer(status: 200, body: #"{"status":"healthy","ready":true}"#), policy)
        #expect(good.passed)
        let bad = Judge.health(HTTPAnswer(status: 200, body: #"{"status":"degraded","ready":true}"#), policy)
        #expect(bad.message == #"GET /health returned 200 but JSON field status is "degraded", expected "healthy""#)
        let notJSON = Judge.health(HTTPAnswer(status: 200, body: "ok"), policy)
        #expect(notJSON.message == "GET /health returned 200 but the body is not a JSON object")
    }
}
