import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// The whole reconcile of one environment against the in-memory engine: plan, lock, pull, strategy,
/// gate, rollback, record.
struct ReconcilerTests {
    let image = ImageSnapshot(id: "sha256:1111")

    /// Fakes for one run, kept so that a test can look at them afterwards.
    struct Run {
        let engine: FakeEngine
        var probe: ScriptedProbe = .healthy()
        var clock = ManualClock()
        let state = FakeStateStore(key: [UInt8](repeating: 1, count: 32))
        let identity = FakeIdentity()
        let log = EventLog()
        let secretFiles = FakeSecretFiles()
        let revisions = FakeRevisionStore(["environments/staging.yml": FileRevision(commit: "abc", dirty: false)])

        func reconcile(
            _ desired: DesiredEnvironment, approval: Reconciler.ApprovalMode = .approved, retry: Bool = false,
            cancelled: @escaping @Sendable () -> Bool = { false }
        ) async -> DeployOutcome {
            var reconciler = Reconciler(
                engine: engine, probe: probe, clock: clock, wallClock: { Date(timeIntervalSince1970: 1_800_000_000) },
                state: state, identity: identity, reporter: log)
            reconciler.secretFiles = secretFiles
            reconciler.revisions = revisions
            let options = Reconciler.Options(approval: approval, retry: retry, cancelled: cancelled)
            return await reconciler.reconcile(desired, options: options).outcome
        }

        /// Like `reconcile`, with another run's secret files.
        func reconcileSharing(_ files: FakeSecretFiles, _ desired: DesiredEnvironment) async -> DeployOutcome {
            var reconciler = Reconciler(
                engine: engine, probe: probe, clock: clock, wallClock: { Date(timeIntervalSince1970: 1_800_000_000) },
                state: state, identity: identity, reporter: log)
            reconciler.secretFiles = files
            return await reconciler.reconcile(desired, options: Reconciler.Options(approval: .approved)).outcome
        }

        /// Steps reported, without the lock's own.
        var steps: [String] { log.all.map(\.step).filter { $0 != "lock" } }
    }

    func deploy(
        _ desired: DesiredEnvironment, engine: FakeEngine, probe: ScriptedProbe = .healthy(),
        clock: ManualClock = ManualClock()
    ) async throws -> (DeployOutcome, [DeployEvent]) {
        let run = Run(engine: engine, probe: probe, clock: clock)
        let outcome = await run.reconcile(desired)
        return (outcome, run.log.all)
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

    /// The spec that runs before a deploy: the same app at v0.
    var oldSpec: EnvironmentSpec {
        var old = spec
        old.image = ImageReference(repository: "acme/app", tag: "v0")
        return old
    }

    /// `spec` with a gate that fails at its first failed probe.
    var failFast: EnvironmentSpec {
        var failing = spec
        failing.health.attempts = 1
        failing.health.startup = .zero
        return failing
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
        #expect(events.map(\.step) == ["create", "start", "gate", "gate", "promote"])
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
        let old = oldSpec
        var backups: [ContainerSnapshot] = []
        // An earlier version's time-named backup is the oldest; numbered ones order by number, not by name.
        for (index, name) in ["backup-20260101T000000Z", "backup-9", "backup-10"].enumerated() {
            backups.append(
                Build.container(
                    DesiredEnvironment(spec: old), id: "b\(index)", state: .exited, name: "app-staging-\(name)"))
        }
        let engine = FakeEngine(
            containers: [Build.container(DesiredEnvironment(spec: old))] + backups, images: ["acme/app:v1": image])
        let (outcome, events) = try await deploy(DesiredEnvironment(spec: spec), engine: engine)
        #expect(outcome == .converged("acme/app:v1 serving on port 18001"))
        #expect(events.map(\.step) == ["create", "backup", "stop", "start", "gate", "gate", "promote", "prune"])
        #expect(events[1].message == "app-staging → app-staging-backup-11")
        #expect(events.last?.message == "removed old backup app-staging-backup-20260101T000000Z")
        let names = try await engine.containers().map(\.name).sorted()
        #expect(names == ["app-staging", "app-staging-backup-10", "app-staging-backup-11", "app-staging-backup-9"])
    }

    @Test func theCandidateIsCreatedBeforeTheRunningVersionIsTouched() async throws {
        let old = oldSpec
        let previous = Build.container(DesiredEnvironment(spec: old))
        let engine = FakeEngine(containers: [previous], images: ["acme/app:v1": image])
        await engine.fail(
            "create app-staging-candidate",
            with: .api(status: 400, message: "range of CPUs is from 0.01 to 2.00", operation: "create"))
        let run = Run(engine: engine)
        let outcome = await run.reconcile(DesiredEnvironment(spec: spec))
        #expect(
            outcome
                == .refused(
                    "Docker engine refused to create (400): range of CPUs is from 0.01 to 2.00; nothing was changed"))
        #expect(await engine.container(named: "app-staging")?.state == .running)
        let touched = await engine.mutatingCalls.filter { !$0.contains(".lock") && !$0.hasPrefix("import") }
        #expect(touched.filter { !$0.hasPrefix("remove") } == ["create app-staging-candidate"])
    }

    /// Issue 8, class 1: a failed rename of the running container must leave it exactly as it was.
    @Test func aFailedBackupRenameLeavesTheRunningVersionAsItWas() async throws {
        let old = oldSpec
        let previous = Build.container(DesiredEnvironment(spec: old))
        let engine = FakeEngine(containers: [previous], images: ["acme/app:v1": image])
        await engine.fail("rename", with: .api(status: 409, message: "name is in use", operation: "rename container"))
        let run = Run(engine: engine)
        let outcome = await run.reconcile(DesiredEnvironment(spec: spec))
        guard case .refused(let reason) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(reason.hasPrefix("cannot rename app-staging aside to app-staging-backup-1: "))
        #expect(reason.hasSuffix("nothing was changed, acme/app:v0 (c0ffee000001) still serves"))
        let containers = try await engine.containers().filter { !$0.isLease }
        #expect(containers.map(\.id) == [previous.id])
        #expect(containers.first?.state == .running)
        #expect(containers.first?.name == "app-staging")
    }

    /// Issue 8, class 3: rollback restores the newest *verified* backup.
    @Test func rollbackSkipsABackupThatNeverPassedItsGate() async throws {
        var good = spec
        good.image = ImageReference(repository: "acme/app", tag: "v0")
        let verified = Build.container(
            DesiredEnvironment(spec: good), id: "verified0001", state: .exited, name: "app-staging-backup-1")
        let unverified = Build.container(
            DesiredEnvironment(spec: good), id: "unverified01", state: .exited, name: "app-staging-backup-2-unverified")
        let engine = FakeEngine(containers: [verified, unverified], images: ["acme/app:v1": image])
        let failing = failFast
        let probe = ScriptedProbe { path, call in
            call == 1 ? HTTPAnswer(status: 503) : HTTPAnswer(status: 200, body: "{}")
        }
        let run = Run(engine: engine, probe: probe)
        let outcome = await run.reconcile(DesiredEnvironment(spec: failing))
        guard case .rolledBack(_, let restored) = outcome else {
            Issue.record("expected a rollback, got \(outcome)")
            return
        }
        #expect(restored == "acme/app:v0 (verified0001) serves again")
        #expect(await engine.container(named: "app-staging")?.id == "verified0001")
    }

    @Test func backupsOrderByNumberAndPruningDropsUnverifiedOnes() {
        let desired = DesiredEnvironment(spec: spec)
        let names = [
            "app-staging-backup-2", "app-staging-backup-10", "app-staging-backup-3-unverified",
            "app-staging-backup-20251231T235959Z", "app-staging-backup-1",
        ]
        let containers = names.enumerated().map { index, name in
            Build.container(desired, id: "id\(index)", state: .exited, name: name)
        }
        #expect(
            containers.backups(of: spec).map(\.name) == [
                "app-staging-backup-10", "app-staging-backup-3-unverified", "app-staging-backup-2",
                "app-staging-backup-1", "app-staging-backup-20251231T235959Z",
            ])
        #expect(spec.nextBackupName(existing: names + ["someone-else"], verified: true) == "app-staging-backup-11")
        #expect(spec.nextBackupName(existing: [], verified: false) == "app-staging-backup-1-unverified")
        var two = spec
        two.backups = 2
        #expect(
            BackupPolicy.surplus(containers.backups(of: two), of: two).map(\.name) == [
                "app-staging-backup-3-unverified", "app-staging-backup-1", "app-staging-backup-20251231T235959Z",
            ])
    }

    @Test func unhealthyReplaceRollsBackToTheBackup() async throws {
        let old = oldSpec
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
        #expect(try await engine.containers().filter { !$0.isLease }.count == 1)
    }

    @Test func firstDeployThatFailsLeavesNothingRunning() async throws {
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let policy = failFast
        let probe = ScriptedProbe { _, _ in HTTPAnswer(status: nil, error: "connection refused") }
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: policy), engine: engine, probe: probe)
        #expect(
            outcome
                == .rolledBack(
                    failure:
                        "health /health never passed: 1 probe failed in 0s; last: GET /health: connection refused",
                    restored: "there was no earlier version to restore; nothing of it runs now"))
        #expect(try await engine.containers().filter { !$0.isLease }.isEmpty)
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
                    "cannot pull acme/other:v9: manifest unknown; the registry has no such image or tag; check the image "
                        + "name and tag; nothing was changed"
                ))
        #expect(
            await engine.mutatingCalls.allSatisfy {
                $0.hasPrefix("pull") || $0.contains(".lock") || $0.hasPrefix("import") || $0.hasPrefix("remove")
            })
        #expect(await engine.container(named: "app-staging") == nil)
    }

    @Test func pullAlwaysReplacesWhenTheTagMovedInTheRegistry() async throws {
        var always = spec
        always.pull = .always
        let desired = DesiredEnvironment(spec: always)
        let engine = FakeEngine(containers: [Build.container(desired)], images: ["acme/app:v1": image])
        await engine.publish("acme/app:v1", ImageSnapshot(id: "sha256:2222"))
        let run = Run(engine: engine)
        let outcome = await run.reconcile(desired)
        #expect(outcome == .converged("acme/app:v1 serving on port 18001"))
        #expect(Array(run.steps.prefix(3)) == ["pull", "create", "backup"])
        #expect(await engine.container(named: "app-staging")?.imageID == "sha256:2222")
        #expect(
            run.log.progress == [
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
                    "cannot pull acme/app:v1: connection refused; the registry docker.io cannot be reached; check its "
                        + "address and this host's network; nothing was changed"
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
        let old = oldSpec
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

    /// A failed container's log lines are shown and kept with the failure: a secret value it
    /// printed is hidden there (found by an attack helper: `echo $API_TOKEN; exit 3`).
    @Test func aSecretPrintedByAFailedContainerIsHiddenInItsLogLines() async throws {
        let old = oldSpec
        let previous = Build.container(DesiredEnvironment(spec: old))
        let engine = FakeEngine(containers: [previous], images: ["acme/app:v1": image])
        await engine.crashOnStart(image: "acme/app:v1", code: 3, restarts: false)
        await engine.logOnStart(image: "acme/app:v1", "Authorization: Bearer supersecret\ntoken=supersecret; bye")
        var secret = spec
        secret.secrets = ["API_TOKEN"]
        let desired = DesiredEnvironment(spec: secret, secretValues: ["API_TOKEN": "supersecret"])
        let (outcome, events) = try await deploy(desired, engine: engine, clock: ManualClock())
        let failure = rollbackFailure(outcome) ?? ""
        #expect(failure.contains("token=[secret]"), "\(failure)")
        #expect(!failure.contains("supersecret"), "\(failure)")
        #expect(!events.contains { $0.message.contains("supersecret") }, "\(events)")
    }

    /// Issue 8, class 8: with `pull: always`, approval is decided on the plan made after the pull.
    @Test func approvalIsDecidedOnThePlanThatRunsAfterThePull() async throws {
        var production = spec
        production.pull = .always
        production.approval = .required
        let desired = DesiredEnvironment(spec: production)
        let engine = FakeEngine(containers: [Build.container(desired)], images: ["acme/app:v1": image])
        await engine.publish("acme/app:v1", ImageSnapshot(id: "sha256:2222"))
        let run = Run(engine: engine)
        let outcome = await run.reconcile(desired, approval: .none)
        #expect(outcome == .skipped(.approval, "staging requires approval; re-run with --approve"))
        #expect(run.log.reportedPlans.last?.action == .replace)
        let touched = await engine.mutatingCalls.filter { !$0.contains(".lock") && !$0.hasPrefix("import") }
        #expect(touched.filter { !$0.hasPrefix("remove") } == ["pull acme/app:v1"])
        #expect(await engine.container(named: "app-staging")?.imageID == "sha256:1111")

        let asked = Locked<[String]>([])
        let declined = await run.reconcile(
            desired,
            approval: .ask { question in
                asked.withLock { $0.append(question) }
                return false
            })
        #expect(declined == .skipped(.declined, "you declined; nothing was changed"))
        #expect(asked.withLock { $0 } == ["Apply the plan above to staging? [y/N] "])
        #expect(
            await run.reconcile(desired, approval: .ask { _ in true })
                == .converged("acme/app:v1 serving on port 18001"))
    }

    /// Issue 8, class 2: every step is recorded before it is taken, and a record that cannot be
    /// written before anything changed stops the deploy.
    @Test func eachStepIsRecordedBeforeItIsTaken() async throws {
        let old = oldSpec
        let engine = FakeEngine(
            containers: [Build.container(DesiredEnvironment(spec: old))], images: ["acme/app:v1": image])
        let run = Run(engine: engine)
        #expect(await run.reconcile(DesiredEnvironment(spec: spec)) == .converged("acme/app:v1 serving on port 18001"))
        #expect(run.state.savedSteps == [.begun, .created, .renamed, .stopped, .gating, .verified])
        #expect(try run.state.deployRecord("app-staging") == nil, "a finished deploy leaves no record")

        let failing = Run(engine: FakeEngine(images: ["acme/app:v1": image]))
        failing.state.failSaves()
        let refused = await failing.reconcile(DesiredEnvironment(spec: spec))
        #expect(refused == .refused("disk full; nothing was changed"))
        #expect(await failing.engine.container(named: "app-staging") == nil)
    }

    @Test func aCandidateThatPassedItsGateBeforeAKillIsPromoted() async throws {
        let desired = DesiredEnvironment(spec: spec)
        let candidate = Build.container(desired, id: "cand00000001", name: "app-staging-candidate")
        let engine = FakeEngine(containers: [candidate], images: ["acme/app:v1": image])
        let run = Run(engine: engine)
        var record = DeployRecord(container: "app-staging", step: .verified, pid: 99, since: "2027-01-15T08:00:00Z")
        record.candidateID = "cand00000001"
        try run.state.saveDeployRecord(record)
        #expect(await run.reconcile(desired) == .unchanged)
        #expect(await engine.container(named: "app-staging")?.id == "cand00000001")
        #expect(
            run.log.all.map(\.message).contains(
                "app-staging-candidate (cand00000001) had passed its gate; it is now app-staging"))
        #expect(try run.state.deployRecord("app-staging") == nil)
    }

    @Test func anActiveContainerWhoseGateWasInterruptedIsGatedAgain() async throws {
        let desired = DesiredEnvironment(spec: spec)
        let engine = FakeEngine(containers: [Build.container(desired)], images: ["acme/app:v1": image])
        let run = Run(engine: engine)
        var record = DeployRecord(container: "app-staging", step: .gating, pid: 99, since: "t")
        record.gatingID = "c0ffee000001"
        try run.state.saveDeployRecord(record)
        #expect(await run.reconcile(desired) == .converged("acme/app:v1 serving on port 18001"))
        #expect(run.log.all.map(\.message).contains("app-staging was never verified; gating it now"))
        #expect(run.log.reportedPlans.last?.changes.map(\.field) == ["verified"])
    }

    /// Issue 8, class 10: a paused active container is the environment's own, and is unpaused.
    @Test func aPausedActiveContainerIsUnpausedAndGated() async throws {
        let desired = DesiredEnvironment(spec: spec)
        let engine = FakeEngine(containers: [Build.container(desired, state: .paused)], images: ["acme/app:v1": image])
        let run = Run(engine: engine)
        #expect(await run.reconcile(desired) == .converged("acme/app:v1 serving on port 18001"))
        #expect(await engine.mutatingCalls.contains("unpause c0ffee000001"))
        #expect(await engine.container(named: "app-staging")?.state == .running)
    }

    /// Issue 8, class 10: every performance request must answer the expected status.
    @Test func aPerformanceCheckAnswering500Fails() async throws {
        var checked = spec
        checked.performance = PerformanceCheck()
        checked.performance?.path = "/items"
        checked.smoke = []
        let probe = ScriptedProbe { path, _ in
            path == "/items" ? HTTPAnswer(status: 500, latency: .milliseconds(1)) : HTTPAnswer(status: 200, body: "{}")
        }
        let (outcome, _) = try await deploy(
            DesiredEnvironment(spec: checked), engine: FakeEngine(images: ["acme/app:v1": image]), probe: probe)
        #expect(rollbackFailure(outcome) == "performance GET /items returned 500, expected 200")
    }

    /// Issue 8, class 4: probes that each stall to their timeout cannot stretch the gate beyond
    /// its bound, and an engine that answers slowly meets the gate's own deadline.
    @Test func stalledProbesAndASlowEngineEndAtTheGateDeadline() async throws {
        var stalled = spec
        stalled.health.startup = .zero
        stalled.health.interval = .seconds(1)
        stalled.health.attempts = 1000
        stalled.health.timeout = .seconds(30)
        let clock = ManualClock()
        let probe = StallingProbe(
            inner: ScriptedProbe { _, _ in HTTPAnswer(status: nil, error: "no complete answer within 30s") },
            clock: clock)
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let id = try await engine.createContainer(
            ContainerCreation(desired: DesiredEnvironment(spec: stalled), deployedAt: Date()))
        try await engine.startContainer(id)
        let verdict = await Verifier(engine: engine, probe: probe, clock: clock).verify(
            stalled, containerID: id, startedAt: .zero, restartsBefore: 0)
        #expect(verdict.failure?.hasPrefix("health /health never passed") == true, "\(verdict)")
        #expect(clock.now() <= stalled.gateBound())

        // Each inspect takes ten minutes: the deadline ends the gate, not the number of attempts.
        let slowClock = ManualClock()
        let slow = Verifier(engine: SlowInspectEngine(inner: engine, clock: slowClock), probe: probe, clock: slowClock)
        let late = await slow.verify(stalled, containerID: id, startedAt: .zero, restartsBefore: 0)
        #expect(late.failure?.hasPrefix("the gate did not finish within its deadline of 17m45s") == true, "\(late)")
        #expect(slowClock.now() < stalled.gateBound() + .seconds(600))

        // An inspect that never answers: the gate ends at its deadline and names the engine, not the app.
        var quick = stalled
        quick.health.attempts = 1
        quick.health.interval = .milliseconds(100)
        quick.health.timeout = .milliseconds(100)
        var silent = SlowInspectEngine(inner: engine, clock: ManualClock())
        silent.hangs = true
        let started = ContinuousClock.now
        let mute = await Verifier(engine: silent, probe: probe, clock: ManualClock()).verify(
            quick, containerID: id, startedAt: .zero, restartsBefore: 0)
        #expect(mute.failure?.hasPrefix("the Docker engine did not answer during the gate") == true, "\(mute)")
        #expect(ContinuousClock.now - started < quick.gateBound() + .seconds(10))
    }

    /// A dockerd killed during the gate: the probes fail because the engine is gone, and the
    /// verdict says so and is not the version's (it must not be remembered as known-bad).
    @Test func aGateFailedWhileTheEngineWasGoneIsNotTheVersionsFailure() async throws {
        var quick = spec
        quick.health.startup = .zero
        quick.health.attempts = 2
        quick.health.interval = .milliseconds(10)
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let id = try await engine.createContainer(
            ContainerCreation(desired: DesiredEnvironment(spec: quick), deployedAt: Date()))
        try await engine.startContainer(id)
        await engine.fail("inspect", with: .unreachable(endpoint: "unix:///d.sock", reason: "connection refused"))
        let refused = ScriptedProbe { _, _ in HTTPAnswer(status: nil, error: "connection refused") }
        let verdict = await Verifier(engine: engine, probe: refused, clock: ManualClock()).verify(
            quick, containerID: id, startedAt: .zero, restartsBefore: 0)
        #expect(verdict.interfered, "\(verdict)")
        #expect(verdict.failure?.contains("the Docker engine stopped answering during the gate") == true)
        // The engine answering again before the end: the version's own failure.
        let answering = FakeEngine(images: ["acme/app:v1": image])
        let other = try await answering.createContainer(
            ContainerCreation(desired: DesiredEnvironment(spec: quick), deployedAt: Date()))
        try await answering.startContainer(other)
        let own = await Verifier(engine: answering, probe: refused, clock: ManualClock()).verify(
            quick, containerID: other, startedAt: .zero, restartsBefore: 0)
        #expect(!own.interfered && own.failure != nil)
    }

    /// Issue 8, class 10: a failed rollback says what really runs, not a fixed sentence.
    @Test func aFailedRollbackDescribesWhatIsReallyThere() async throws {
        let old = oldSpec
        let previous = Build.container(DesiredEnvironment(spec: old))
        let engine = FakeEngine(containers: [previous], images: ["acme/app:v1": image])
        let failing = failFast
        let probe = ScriptedProbe { path, call in
            path == "/health" && call == 1 ? HTTPAnswer(status: 503) : HTTPAnswer(status: 200, body: "{}")
        }
        await engine.fail(
            "start c0ffee000001", with: .api(status: 500, message: "OCI runtime error", operation: "start"))
        let (outcome, _) = try await deploy(DesiredEnvironment(spec: failing), engine: engine, probe: probe)
        guard case .rollbackFailed(_, let state) = outcome else {
            Issue.record("expected a failed rollback, got \(outcome)")
            return
        }
        #expect(state.hasPrefix("no backup could be restored (app-staging-backup-1 (c0ffee000001): "), "\(state)")
        // The backup that could not start stepped aside again, under its own name.
        #expect(
            state.contains("no container is named app-staging; backups: app-staging-backup-1 (acme/app:v0, exited)"))
        #expect(state.contains("port 18001 answers GET /health with 200"), "\(state)")
    }

    @Test func aSignalBeforeAnythingChangedStopsAtOnce() async throws {
        let run = Run(engine: FakeEngine(images: ["acme/app:v1": image]))
        let outcome = await run.reconcile(DesiredEnvironment(spec: spec), cancelled: { true })
        #expect(outcome == .interrupted("not started"))
        #expect(await run.engine.mutatingCalls.isEmpty)
    }

    @Test(
        arguments: [
            ([DeployOutcome.converged("a"), .refused("b")], nil, false, ExitCodes.partial),
            ([.unchanged, .refused("b")], nil, false, ExitCodes.failure),
            ([.converged("a"), .rolledBack(failure: "x", restored: "y")], 15, false, ExitCodes.rolledBack),
            ([.rolledBack(failure: "x", restored: "y"), .rollbackFailed(failure: "x", state: "y")], nil, false, 4),
            ([.converged("a")], 15, false, 143),
            ([.converged("a"), .skipped(.approval, "p")], nil, false, ExitCodes.skippedForApproval),
            ([.converged("a"), .unchanged], nil, true, ExitCodes.changesPending),
            ([.unchanged, .unchanged], nil, true, ExitCodes.success),
            ([.interrupted("w")], nil, false, ExitCodes.failure),
        ] as [([DeployOutcome], Int32?, Bool, Int32)])
    func exitCodesTellOutcomesApart(_ outcomes: [DeployOutcome], _ signal: Int32?, _ detailed: Bool, _ code: Int32) {
        #expect(ExitCodes.apply(outcomes, interruptedBy: signal, detailed: detailed) == code)
    }

    /// Issue 8, class 12: with `secrets_mode: file` a value is a mounted file, never a variable;
    /// a failed deploy's files go with it, and files nobody uses are swept.
    @Test func secretFilesAreMountedAndCleanedUp() async throws {
        var filed = spec
        filed.secrets = ["API_TOKEN"]
        filed.secretsMode = .file
        let key = [UInt8](repeating: 5, count: 32)
        let desired = DesiredEnvironment(spec: filed, secretValues: ["API_TOKEN": "hunter2"], fingerprintKey: key)
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let run = Run(engine: engine)
        #expect(await run.reconcile(desired) == .converged("acme/app:v1 serving on port 18001"))
        let creation = try #require(await engine.creations.last)
        #expect(creation.environment.map(\.0) == ["API_TOKEN_FILE"])
        #expect(creation.environment.first?.1 == "/run/secrets/API_TOKEN")
        #expect(!creation.environment.contains { $0.1.contains("hunter2") })
        let folder = try #require(creation.labels[Labels.secretFolder])
        #expect(creation.mounts == [FileMount(source: "\(folder)/API_TOKEN", target: "/run/secrets/API_TOKEN")])
        #expect(run.secretFiles.all[folder] == ["API_TOKEN": "hunter2"])

        // A new value that fails its gate: its files go with the failed container, and an orphan
        // (its container removed by hand) is swept.
        let orphan = try run.secretFiles.place(["API_TOKEN": "x"], for: "app-staging-candidate", user: nil)
        var failing = filed
        failing.health.attempts = 1
        failing.health.startup = .zero
        let probe = ScriptedProbe { _, call in call == 1 ? HTTPAnswer(status: 500) : HTTPAnswer(status: 200, body: "{}")
        }
        let changed = DesiredEnvironment(spec: failing, secretValues: ["API_TOKEN": "hunter3"], fingerprintKey: key)
        let outcome = await Run(engine: engine, probe: probe).reconcileSharing(run.secretFiles, changed)
        #expect(rollbackFailure(outcome) != nil)
        #expect(
            Array(run.secretFiles.all.keys) == [folder], "\(run.secretFiles.all.keys.sorted()), orphan \(orphan.path)")
    }

    /// Issue 9: a desired state that failed and was rolled back is not tried again in a loop; a
    /// change of the file (or `--retry`) tries it; a success forgets it.
    @Test func aFailedDesiredStateIsNotRetriedInALoop() async throws {
        let old = oldSpec
        let engine = FakeEngine(
            containers: [Build.container(DesiredEnvironment(spec: old))],
            images: ["acme/app:v1": image, "acme/app:v2": ImageSnapshot(id: "sha256:2222")])
        let bad = failFast
        let probe = ScriptedProbe { path, call in
            path == "/health" && call == 1 ? HTTPAnswer(status: 500) : HTTPAnswer(status: 200, body: "{}")
        }
        let run = Run(engine: engine, probe: probe)
        #expect(rollbackFailure(await run.reconcile(DesiredEnvironment(spec: bad))) != nil)
        let failed = try #require(try run.state.failedDeploy("app-staging"))
        #expect(failed.revision == "abc")
        let creates = await engine.calls.filter { $0 == "create app-staging-candidate" }.count

        for _ in 0..<3 {
            let again = await run.reconcile(DesiredEnvironment(spec: bad))
            guard case .skipped(.knownBad, let reason) = again else {
                Issue.record("expected a known-bad skip, got \(again)")
                return
            }
            #expect(reason.hasPrefix("revision abc failed at 2027-01-15T08:00:00Z and was rolled back (health /health"))
            #expect(reason.hasSuffix("Change the file, or try it again with `reconcile apply --retry`"))
            #expect(again.exitCode == 6)
        }
        #expect(await engine.calls.filter { $0 == "create app-staging-candidate" }.count == creates)
        #expect(await engine.container(named: "app-staging")?.image == "acme/app:v0")

        // --retry tries it; a changed file is a new desired state, and a success forgets the failure.
        #expect(
            await run.reconcile(DesiredEnvironment(spec: bad), retry: true)
                == .converged("acme/app:v1 serving on port 18001"))
        #expect(try run.state.failedDeploy("app-staging") == nil)
    }

    /// Found by attacking: a start that failed its gate deleted the environment's own container.
    @Test func aStartThatFailsKeepsTheContainerAsAnUnverifiedBackup() async throws {
        let old = oldSpec
        let backup = Build.container(
            DesiredEnvironment(spec: old), id: "backup000001", state: .exited, name: "app-staging-backup-1")
        let desired = DesiredEnvironment(spec: spec)
        let stopped = Build.container(desired, id: "active000001", state: .exited)
        let engine = FakeEngine(containers: [stopped, backup], images: ["acme/app:v1": image])
        let failing = failFast
        let probe = ScriptedProbe { path, call in
            path == "/health" && call == 1 ? HTTPAnswer(status: 500) : HTTPAnswer(status: 200, body: "{}")
        }
        let outcome = await Run(engine: engine, probe: probe).reconcile(DesiredEnvironment(spec: failing))
        #expect(rollbackFailure(outcome) != nil)
        #expect(await engine.container(named: "app-staging")?.id == "backup000001")
        let kept = await engine.container(named: "app-staging-backup-2-unverified")
        #expect(kept?.id == "active000001")
        #expect(kept?.state == .exited)
    }

    /// Found by attacking: when the newest backup cannot be restored, the next one is.
    @Test func rollbackFallsBackToTheNextBackup() async throws {
        let old = oldSpec
        let older = Build.container(
            DesiredEnvironment(spec: old), id: "older0000001", state: .exited, name: "app-staging-backup-1")
        let previous = Build.container(DesiredEnvironment(spec: old), id: "previous0001")
        let engine = FakeEngine(containers: [previous, older], images: ["acme/app:v1": image])
        await engine.fail(
            "start previous0001", with: .api(status: 500, message: "OCI runtime error", operation: "start"))
        let failing = failFast
        let probe = ScriptedProbe { path, call in
            path == "/health" && call == 1 ? HTTPAnswer(status: 500) : HTTPAnswer(status: 200, body: "{}")
        }
        let outcome = await Run(engine: engine, probe: probe).reconcile(DesiredEnvironment(spec: failing))
        guard case .rolledBack(_, let restored) = outcome else {
            Issue.record("expected a rollback, got \(outcome)")
            return
        }
        #expect(restored == "acme/app:v0 (older0000001) serves again")
        #expect(await engine.container(named: "app-staging-backup-2")?.id == "previous0001")
    }

    /// Found by attacking: a candidate that passed its gate was removed when the active name was taken.
    @Test func aVerifiedCandidateThatCannotTakeTheNameKeepsServing() async throws {
        let engine = FakeEngine(images: ["acme/app:v1": image])
        await engine.fail(
            "rename \(String(format: "%064x", 2).prefix(12)) app-staging",
            with: .api(status: 409, message: "name in use", operation: "rename"))
        let outcome = await Run(engine: engine).reconcile(DesiredEnvironment(spec: spec))
        guard case .rollbackFailed(let failure, let state) = outcome else {
            Issue.record("expected a failed promotion, got \(outcome)")
            return
        }
        #expect(failure.hasPrefix("the new version passed its gate but cannot take the name app-staging"))
        #expect(state.hasPrefix("it serves on port 18001 as app-staging-candidate"))
        #expect(await engine.container(named: "app-staging-candidate")?.state == .running)
    }

    /// Issue 9: a pinned revision whose image is gone and has no registry digest is refused with
    /// a sentence naming the image; nothing runs whatever the tag points at now.
    @Test func aPinnedImageThatIsGoneWithoutADigestIsRefused() async throws {
        let old = oldSpec
        let engine = FakeEngine(
            containers: [Build.container(DesiredEnvironment(spec: old))], images: ["acme/app:v1": image])
        var desired = DesiredEnvironment(spec: spec)
        desired.pin = ImagePin(id: "sha256:0123456789abcdef", digest: nil, revision: "abc123")
        let outcome = await Run(engine: engine).reconcile(desired)
        #expect(
            outcome
                == .refused(
                    "image acme/app:v1 as revision abc123 ran it (0123456789ab) is no longer on this host and has no "
                        + "registry digest to pull it by; nothing was changed. Load that image again, or roll back to "
                        + "another revision"))
        #expect(await engine.container(named: "app-staging")?.image == "acme/app:v0")
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

/// A probe whose every request waits out its whole timeout on the manual clock, as a server that
/// stalls mid-body would.
final class StallingProbe: HealthProbe, Sendable {
    let inner: ScriptedProbe
    let clock: ManualClock

    init(inner: ScriptedProbe, clock: ManualClock) {
        self.inner = inner
        self.clock = clock
    }

    func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
        clock.advance(by: timeout)
        return await inner.get(host: host, port: port, path: path, timeout: timeout)
    }
}

/// An engine whose every inspect takes ten minutes on the manual clock.
struct SlowInspectEngine: ContainerEngine {
    let inner: FakeEngine
    let clock: ManualClock
    /// Never answers an inspect at all (an engine, or the ssh link to it, gone silent).
    var hangs = false

    func ping() async throws { try await inner.ping() }
    func version() async throws -> EngineVersion { try await inner.version() }
    func containers() async throws -> [ContainerSnapshot] { try await inner.containers() }
    func inspectContainer(_ idOrName: String) async throws -> ContainerSnapshot? {
        if hangs { try await Task.sleep(for: .seconds(3600)) }
        clock.advance(by: .seconds(600))
        return try await inner.inspectContainer(idOrName)
    }
    func inspectImage(_ reference: String) async throws -> ImageSnapshot? { try await inner.inspectImage(reference) }
    func pull(_ reference: String, progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        try await inner.pull(reference, progress: progress)
    }
    func importImage(_ archive: [UInt8], as reference: String) async throws {
        try await inner.importImage(archive, as: reference)
    }
    func createContainer(_ request: ContainerCreation) async throws -> String {
        try await inner.createContainer(request)
    }
    func startContainer(_ id: String) async throws { try await inner.startContainer(id) }
    func unpauseContainer(_ id: String) async throws { try await inner.unpauseContainer(id) }
    func stopContainer(_ id: String, timeout: Duration) async throws {
        try await inner.stopContainer(id, timeout: timeout)
    }
    func renameContainer(_ id: String, to name: String) async throws { try await inner.renameContainer(id, to: name) }
    func removeContainer(_ id: String, force: Bool) async throws { try await inner.removeContainer(id, force: force) }
    func logs(_ id: String, tail: Int) async throws -> String { try await inner.logs(id, tail: tail) }
    func network(_ name: String) async throws -> NetworkSnapshot? { try await inner.network(name) }
    func createNetwork(_ name: String, labels: [String: String]) async throws {
        try await inner.createNetwork(name, labels: labels)
    }
    func removeNetwork(_ name: String) async throws { try await inner.removeNetwork(name) }
    func events() -> AsyncThrowingStream<EngineEvent, Error> { inner.events() }
    func shutdown() async { await inner.shutdown() }
}
