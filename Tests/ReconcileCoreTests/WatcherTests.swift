import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// The watch loop against the in-memory engine: when it reconciles, what it folds together, what
/// it reports once, and how it stops and reconnects.
@Suite(.timeLimit(.minutes(1)))
struct WatcherTests {
    /// Records what the loop does; reconciles are counted per environment.
    final class Probe: Sendable {
        let reconciles = Locked([String: Int]())
        let reports = Locked([String]())
        let connects = Locked(0)
        let failConnects = Locked(0)
        let slow = Locked(Duration.zero)
        let inFlight = Locked((now: 0, most: 0))
        /// Outcomes the next reconciles return, first first; `unchanged` once it is empty.
        let outcomes = Locked([DeployOutcome]())
        /// The image each reconcile was given, in order.
        let images = Locked([String]())

        func count(_ name: String) -> Int { reconciles.withLock { $0[name] ?? 0 } }
        var lines: [String] { reports.withLock { $0 } }
    }

    func spec(_ environment: String) -> DesiredEnvironment {
        DesiredEnvironment(
            spec: Build.spec(service: "app", environment: environment, image: "acme/app:v1", port: 8001))
    }

    func watcher(
        _ engine: FakeEngine, _ probe: Probe, loaded: Locked<[Watcher.Loaded]>, interval: Duration = .seconds(3600),
        refresh: (@Sendable (DesiredEnvironment) -> DesiredEnvironment?)? = nil
    ) -> Watcher {
        var hooks = self.hooks(engine, probe, loaded: loaded)
        hooks.refresh = refresh
        return Watcher(
            configuration: .init(
                interval: interval, debounce: .milliseconds(100), backoff: .milliseconds(50),
                maxBackoff: .milliseconds(200), retry: .milliseconds(100)),
            hooks: hooks, clock: SystemClock())
    }

    func hooks(_ engine: FakeEngine, _ probe: Probe, loaded: Locked<[Watcher.Loaded]>) -> Watcher.Hooks {
        Watcher.Hooks(
            connect: {
                probe.connects.withLock { $0 += 1 }
                let fail = probe.failConnects.withLock { count -> Bool in
                    defer { count = max(0, count - 1) }
                    return count > 0
                }
                if fail { throw EngineError.unreachable(endpoint: "fake", reason: "down") }
                return engine
            },
            load: { loaded.withLock { $0 } },
            reconcile: { _, desired, _ in
                let delay = probe.slow.withLock { $0 }
                probe.inFlight.withLock {
                    $0.now += 1
                    $0.most = max($0.most, $0.now)
                }
                if delay > .zero { try? await Task.sleep(for: delay) }
                probe.inFlight.withLock { $0.now -= 1 }
                probe.reconciles.withLock { $0[desired.spec.environment, default: 0] += 1 }
                probe.images.withLock { $0.append(desired.spec.image.description) }
                let outcome = probe.outcomes.withLock { $0.isEmpty ? .unchanged : $0.removeFirst() }
                return Reconciler.Result(outcome: outcome, plan: nil, seconds: 0)
            },
            report: { report in
                let line: String
                switch report {
                case .engineUp: line = "up"
                case .engineDown(let reason): line = "down \(reason)"
                case .invalid(let file, _): line = "invalid \(file)"
                case .valid(let file): line = "valid \(file)"
                case .removed(let environment, let file): line = "removed \(environment ?? "-") \(file)"
                case .pass(let trigger): line = "pass \(trigger.rawValue)"
                case .reconciled(let environment, _, _, let trigger): line = "\(environment) \(trigger.rawValue)"
                case .event(let environment, let action): line = "event \(environment) \(action)"
                case .stopping: line = "stopping"
                }
                probe.reports.withLock { $0.append(line) }
            })
    }

    func until(_ condition: () -> Bool) async throws {
        for _ in 0..<200 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the condition did not hold within 4 s")
    }

    func event(_ action: String, _ name: String, oldName: String? = nil) -> EngineEvent {
        var event = EngineEvent(action: action, containerID: "c1", name: name, time: Date())
        event.oldName = oldName
        return event
    }

    @Test func eventsOnTheLiveContainerTriggerOneFoldedReconcile() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging")), .environment(spec("production"))])
        let watcher = watcher(engine, probe, loaded: loaded)
        let run = Task { await watcher.run() }
        try await until { probe.count("staging") == 1 && probe.count("production") == 1 }

        // A burst (kill, die, stop) on the live container: one reconcile after the debounce.
        for action in ["kill", "die", "stop"] { engine.emit(event(action, "app-staging")) }
        try await until { probe.count("staging") >= 2 }
        try await Task.sleep(for: .milliseconds(300))
        #expect(probe.count("staging") <= 3, "a burst of three events ran \(probe.count("staging") - 1) reconciles")
        // The deploys' own steps on other names, and a start, change nothing.
        engine.emit(event("die", "app-staging-backup-1"))
        engine.emit(event("start", "app-staging"))
        engine.emit(event("rename", "app-staging", oldName: "app-staging-candidate"))
        try await Task.sleep(for: .milliseconds(300))
        let settled = probe.count("staging")
        // The live name renamed away: that is drift.
        engine.emit(event("rename", "app-staging-x", oldName: "app-staging"))
        try await until { probe.count("staging") == settled + 1 }
        #expect(probe.count("production") == 1, "another environment's events woke production")
        #expect(probe.lines.contains("event staging kill"))

        watcher.stop()
        await run.value
        #expect(probe.lines.last == "stopping" || probe.lines.contains("stopping"))
    }

    @Test func aReconcileThatDidNotGetThroughIsTriedAgainSoonWithADoublingWait() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        probe.outcomes.withLock { $0 = [.refused("engine restoring"), .refused("engine restoring")] }
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging")), .environment(spec("production"))])
        let watcher = watcher(engine, probe, loaded: loaded)
        let run = Task { await watcher.run() }
        // Two refusals, then a retry that gets through; the interval is an hour away.
        try await until { probe.lines.filter { $0.hasSuffix(" retry") }.count == 2 }
        try await Task.sleep(for: .milliseconds(600))
        #expect(probe.lines.filter { $0.hasSuffix(" retry") }.count == 2, "retried after it got through")
        #expect(probe.count("staging") + probe.count("production") == 4)
        watcher.stop()
        await run.value
        #expect(Watcher.wantsRetry(.rollbackFailed(failure: "x", state: "y")))
        #expect(!Watcher.wantsRetry(.skipped(.knownBad, "failed before")))
        #expect(!Watcher.wantsRetry(.converged("ok")))
    }

    @Test func aSwarmServiceIsWokenByItsServiceEventsNotItsTasksContainers() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        var swarm = spec("production")
        swarm.spec.platform = .swarm
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging")), .environment(swarm)])
        let watcher = watcher(engine, probe, loaded: loaded)
        let run = Task { await watcher.run() }
        try await until { probe.count("staging") == 1 && probe.count("production") == 1 }
        var service = event("update", "app-production")
        service.isService = true
        #expect(watcher.route(service) == "app-production")
        service.action = "remove"
        #expect(watcher.route(service) == "app-production")
        // A task's container dying is Swarm's to heal; a container named as the service is not it.
        #expect(watcher.route(event("die", "app-production.1.x7k2")) == nil)
        #expect(watcher.route(event("die", "app-production")) == nil)
        // A container's `docker update` is drift of the container environment.
        #expect(watcher.route(event("update", "app-staging")) == "app-staging")
        var staging = event("update", "app-staging")
        staging.isService = true
        #expect(watcher.route(staging) == nil, "a service named like a container environment woke it")
        watcher.stop()
        await run.value
    }

    @Test func aReconcileBetweenPassesAppliesTheFileAsItIsNowNotAsThePassReadIt() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging"))])
        let now = Locked<DesiredEnvironment?>(nil)
        let watcher = watcher(engine, probe, loaded: loaded) { _ in now.withLock { $0 } }
        let run = Task { await watcher.run() }
        try await until { probe.images.withLock { $0 } == ["acme/app:v1"] }
        // The file now says v2 (an apply by hand applied it); an event comes before the next pass.
        var newer = spec("staging")
        newer.spec.image = ImageReference(repository: "acme/app", tag: "v2")
        now.withLock { $0 = newer }
        engine.emit(event("die", "app-staging"))
        try await until { probe.images.withLock { $0.count } == 2 }
        #expect(probe.images.withLock { $0 } == ["acme/app:v1", "acme/app:v2"])
        // A file that no longer validates: the event changes nothing.
        now.withLock { $0 = nil }
        engine.emit(event("die", "app-staging"))
        try await Task.sleep(for: .milliseconds(400))
        #expect(probe.images.withLock { $0.count } == 2)
        watcher.stop()
        await run.value
    }

    @Test func aSlowEnvironmentDoesNotHoldUpAnother() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging")), .environment(spec("production"))])
        probe.slow.withLock { $0 = .milliseconds(1500) }
        let watcher = watcher(engine, probe, loaded: loaded)
        let run = Task { await watcher.run() }
        try await until { probe.count("staging") == 1 && probe.count("production") == 1 }
        // Both ran side by side, not one after the other.
        #expect(probe.inFlight.withLock { $0.most } == 2)
        watcher.stop()
        await run.value
    }

    @Test func anInvalidFileIsReportedOnceAndWhenItIsValidAgain() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        let loaded = Locked<[Watcher.Loaded]>([
            .environment(spec("staging")), .invalid(file: "production.yml", problem: "port: must be …"),
        ])
        let watcher = watcher(engine, probe, loaded: loaded, interval: .milliseconds(200))
        let run = Task { await watcher.run() }
        try await until { probe.lines.filter { $0 == "pass interval" }.count >= 3 }
        #expect(probe.lines.filter { $0 == "invalid production.yml" }.count == 1)
        #expect(probe.count("staging") >= 3, "the valid environment carried on")
        var fixed = spec("production")
        fixed.spec.file = "production.yml"
        loaded.withLock { $0[1] = .environment(fixed) }
        try await until { probe.lines.contains("valid production.yml") && probe.count("production") >= 1 }
        watcher.stop()
        await run.value
    }

    @Test func anEngineThatGoesAwayIsReportedOnceAndEverythingIsReconciledWhenItIsBack() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging"))])
        let watcher = watcher(engine, probe, loaded: loaded)
        let run = Task { await watcher.run() }
        try await until { probe.count("staging") == 1 && watcher.engineReachable }

        probe.failConnects.withLock { $0 = 4 }
        engine.endEvents()
        try await until { probe.lines.contains("staging reconnect") }
        let downs = probe.lines.filter { $0.hasPrefix("down") }
        // Once when it went, not once per failed attempt.
        #expect(downs == ["down the engine's event stream ended"], "\(downs)")
        #expect(probe.connects.withLock { $0 } >= 5)
        #expect(watcher.engineReachable)
        watcher.stop()
        await run.value
    }

    @Test func stopLetsTheReconcileInProgressFinish() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        probe.slow.withLock { $0 = .milliseconds(500) }
        let watcher = watcher(engine, probe, loaded: Locked([.environment(spec("staging"))]))
        let run = Task { await watcher.run() }
        try await until { probe.inFlight.withLock { $0.now } == 1 }
        watcher.stop()
        await run.value
        #expect(probe.count("staging") == 1, "the reconcile in progress was cut off")
        #expect(watcher.isStopping)
    }

    @Test func anEnvironmentWhoseFileIsGoneIsLeftAlone() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        var gone = spec("production")
        gone.spec.file = "production.yml"
        let loaded = Locked<[Watcher.Loaded]>([.environment(spec("staging")), .environment(gone)])
        let watcher = watcher(engine, probe, loaded: loaded, interval: .milliseconds(200))
        let run = Task { await watcher.run() }
        try await until { probe.count("production") >= 1 }
        loaded.withLock { $0.removeLast() }
        try await until { probe.lines.contains("removed production production.yml") }
        let before = probe.count("production")
        engine.emit(event("destroy", "app-production"))
        try await Task.sleep(for: .milliseconds(400))
        #expect(probe.count("production") == before, "a removed file's environment was reconciled again")
        watcher.stop()
        await run.value
    }

    @Test func atMostParallelReconcilesRunAtOnce() async throws {
        let engine = FakeEngine()
        engine.keepEventsOpen()
        let probe = Probe()
        probe.slow.withLock { $0 = .milliseconds(200) }
        let loaded = Locked<[Watcher.Loaded]>((0..<12).map { .environment(spec("e\($0)")) })
        let watcher = Watcher(
            configuration: .init(interval: .seconds(3600), parallel: 3),
            hooks: .init(
                connect: { engine }, load: { loaded.withLock { $0 } },
                reconcile: { _, desired, _ in
                    probe.inFlight.withLock {
                        $0.now += 1
                        $0.most = max($0.most, $0.now)
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                    probe.inFlight.withLock { $0.now -= 1 }
                    probe.reconciles.withLock { $0[desired.spec.environment, default: 0] += 1 }
                    probe.images.withLock { $0.append(desired.spec.image.description) }
                    let outcome = probe.outcomes.withLock { $0.isEmpty ? .unchanged : $0.removeFirst() }
                    return Reconciler.Result(outcome: outcome, plan: nil, seconds: 0)
                }, report: { _ in }),
            clock: SystemClock())
        let run = Task { await watcher.run() }
        try await until { (0..<12).allSatisfy { probe.count("e\($0)") == 1 } }
        #expect(probe.inFlight.withLock { $0.most } == 3)
        watcher.stop()
        await run.value
    }
}
