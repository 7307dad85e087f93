import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Webhook URLs (never shown whole), the notification's text, and when a reconcile sends one.
struct NotifyTests {
    @Test func webhookURLsAreCheckedAndNeverShownWhole() {
        #expect(WebhookURL.problem("https://hooks.slack.com/services/T0/B0/secret") == nil)
        #expect(WebhookURL.problem("$SLACK_WEBHOOK") == nil)
        #expect(WebhookURL.problem("ftp://x/y") != nil)
        #expect(WebhookURL.problem("$1BAD") != nil)
        #expect(WebhookURL.problem("hooks.slack.com/x") != nil)
        #expect(WebhookURL.redacted("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…")
        #expect(WebhookURL.redacted("http://127.0.0.1:9000/a?token=x") == "http://127.0.0.1:9000/…")
        #expect(WebhookURL.resolve("$HOOK", environment: ["HOOK": "https://h/x"]) == "https://h/x")
        #expect(WebhookURL.resolve("$HOOK", environment: [:]) == nil)
        #expect(WebhookURL.resolve("$HOOK", environment: ["HOOK": "$OTHER"]) == nil)
    }

    @Test func theFileNamesAWebhookWithItsLine() throws {
        let good = SpecParser.parse(
            Array("service: a\nimage: b:1\nport: 1\nnotify: {webhook: $HOOK}\n".utf8), file: "s.yml",
            defaultEnvironment: "s")
        #expect(try good.get().spec.webhook == "$HOOK")
        guard
            case .failure(let failure) = SpecParser.parse(
                Array("service: a\nimage: b:1\nport: 1\nnotify:\n  webhook: ftp://x/secret\n".utf8), file: "s.yml",
                defaultEnvironment: "s")
        else {
            Issue.record("accepted an ftp webhook")
            return
        }
        #expect(failure.issues.first?.line == 5 && failure.issues.first?.field == "notify.webhook")
        #expect(failure.issues.first?.message.contains("secret") == false, "the URL was repeated in the error")
    }

    @Test func theTextSaysWhatHappened() {
        let done = DeployNotification(
            environment: "staging", service: "api", file: "s.yml", result: "converged", revision: "abcdef1234567890",
            oldImage: "api:v1", newImage: "api:v2", failedCheck: nil, seconds: 3.21)
        #expect(done.text == "reconcile api staging: deployed api:v1 → api:v2 (revision abcdef123456) in 3.2 s")
        let failed = DeployNotification(
            environment: "staging", service: "api", file: "s.yml", result: "rolled-back", revision: nil,
            oldImage: "api:v1", newImage: "api:v3", failedCheck: "health /health never passed", seconds: 40)
        #expect(
            failed.text.contains("deploy of api:v3 failed and was rolled back in 40 s — health /health never passed"))
    }

    final class Recorder: Notifier, Sendable {
        let sent = Locked([(DeployNotification, String)]())
        func send(_ notification: DeployNotification, to url: String) async {
            sent.withLock { $0.append((notification, url)) }
        }
        var results: [String] { sent.withLock { $0.map(\.0.result) } }
    }

    @Test func aReconcileNotifiesItsOutcomeAndAKnownBadSkipOnce() async throws {
        let engine = FakeEngine(images: [
            "acme/app:v1": ImageSnapshot(id: "sha256:1"), "acme/app:bad": ImageSnapshot(id: "sha256:2"),
        ])
        let state = FakeStateStore(key: [1])
        let recorder = Recorder()
        var spec = Build.spec(service: "app", environment: "staging", image: "acme/app:v1", port: 8001)
        spec.webhook = "$HOOK"
        spec.health.startup = .zero
        spec.health.attempts = 1
        spec.contentDigest = "digest-1"
        func reconcile(_ spec: EnvironmentSpec, probe: ScriptedProbe) async -> Reconciler.Result {
            var reconciler = Reconciler(
                engine: engine, probe: probe, clock: ManualClock(), state: state, identity: FakeIdentity(),
                reporter: EventLog())
            reconciler.notifier = recorder
            reconciler.variables = ["HOOK": "https://hooks.example.com/T0/secret"]
            return await reconciler.reconcile(DesiredEnvironment(spec: spec), options: .init(approval: .approved))
        }
        _ = await reconcile(spec, probe: .healthy())
        #expect(recorder.results == ["converged"])
        #expect(recorder.sent.withLock { $0.first?.1 } == "https://hooks.example.com/T0/secret")

        // In sync: nothing to say.
        _ = await reconcile(spec, probe: .healthy())
        #expect(recorder.results.count == 1)

        // Removed by hand and put back: drift, corrected.
        if let live = await engine.container(named: "app-staging") {
            try await engine.removeContainer(live.id, force: true)
        }
        let healed = await reconcile(spec, probe: .healthy())
        #expect(healed.drift)
        #expect(recorder.results.last == "drift-corrected")

        var bad = spec
        bad.image = ImageReference(repository: "acme/app", tag: "bad")
        bad.contentDigest = "digest-2"
        // The new version's one probe fails; the restored one answers.
        let failing = ScriptedProbe { _, call in
            HTTPAnswer(status: call == 1 ? 500 : 200, body: #"{"status":"healthy"}"#)
        }
        _ = await reconcile(bad, probe: failing)
        _ = await reconcile(bad, probe: failing)
        _ = await reconcile(bad, probe: failing)
        #expect(recorder.results.suffix(2) == ["rolled-back", "skipped-known-bad"], "\(recorder.results)")
    }

    /// Removes the candidate during its first probe, as `docker rm -f` by a person would.
    final class RemovingProbe: HealthProbe, Sendable {
        let engine: FakeEngine
        init(engine: FakeEngine) { self.engine = engine }
        func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
            if let candidate = await engine.container(named: "app-staging-candidate") {
                try? await engine.removeContainer(candidate.id, force: true)
                return HTTPAnswer(status: nil, error: "connection refused")
            }
            return HTTPAnswer(status: 200, body: #"{"status":"healthy"}"#)
        }
    }

    @Test func aCandidateRemovedByAPersonDoesNotMakeTheVersionKnownBad() async throws {
        let engine = FakeEngine(images: ["acme/app:v1": ImageSnapshot(id: "sha256:1")])
        let state = FakeStateStore(key: [1])
        var spec = Build.spec(service: "app", environment: "staging", image: "acme/app:v1", port: 8001)
        spec.health.startup = .zero
        spec.contentDigest = "digest-1"
        var reconciler = Reconciler(
            engine: engine, probe: RemovingProbe(engine: engine), clock: ManualClock(), state: state,
            identity: FakeIdentity(), reporter: EventLog())
        let first = await reconciler.reconcile(DesiredEnvironment(spec: spec), options: .init(approval: .approved))
        guard case .rolledBack(let failure, _) = first.outcome else {
            Issue.record("expected a rollback, got \(first.outcome)")
            return
        }
        #expect(failure.contains("removed during its gate"))
        #expect(try state.failedDeploy(spec.containerName) == nil, "a person's docker rm made the version known bad")
        reconciler.probe = ScriptedProbe.healthy()
        let second = await reconciler.reconcile(DesiredEnvironment(spec: spec), options: .init(approval: .approved))
        #expect(second.outcome == .converged("acme/app:v1 serving on port 8001"), "\(second.outcome)")
    }

    @Test func aRestoredBackupIsCheckedNoStricterThanTheDefaults() {
        var spec = Build.spec(service: "app", environment: "staging", image: "acme/app:v1", port: 8001)
        spec.health.attempts = 3
        spec.health.startup = .seconds(1)
        #expect(spec.forRestore.health.attempts == 10 && spec.forRestore.health.startup == .seconds(15))
        spec.health.attempts = 30
        #expect(spec.forRestore.health.attempts == 30)
    }
}
