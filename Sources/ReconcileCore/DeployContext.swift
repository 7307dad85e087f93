import Foundation

/// How one environment's apply ended. Each case maps to one exit code.
public enum DeployOutcome: Sendable, Equatable {
    /// Nothing needed changing; nothing was touched.
    case unchanged
    /// The environment now matches its file.
    case converged(String)
    /// Refused before anything changed (conflict, missing secret or image, pull failure, engine error).
    case refused(String)
    /// Not applied, on purpose, before anything changed: approval missing or declined.
    case skipped(SkipReason, String)
    /// Stopped by a signal before anything changed.
    case interrupted(String)
    /// The new version failed its gate; the previous one serves again (or nothing ran before).
    case rolledBack(failure: String, restored: String)
    /// The new version failed and so did the rollback; `state` says exactly what is left.
    case rollbackFailed(failure: String, state: String)

    /// Why an environment was skipped.
    public enum SkipReason: String, Sendable, Equatable {
        /// `approval: required` and no `--approve` (and no terminal to ask on).
        case approval
        /// A person answered no at the prompt.
        case declined
        /// The same desired state failed and was rolled back before; it is not tried again in a
        /// loop (`apply --retry` or a change of the file tries it).
        case knownBad
    }

    /// True when the engine was changed (even if the change was then rolled back).
    public var changedEngine: Bool {
        switch self {
        case .converged, .rolledBack, .rollbackFailed: return true
        case .unchanged, .refused, .skipped, .interrupted: return false
        }
    }

    /// The outcome's name in output and the journal.
    public var name: String {
        switch self {
        case .unchanged: return "unchanged"
        case .converged: return "converged"
        case .refused: return "refused"
        case .skipped(let reason, _):
            switch reason {
            case .approval: return "skipped-approval"
            case .declined: return "declined"
            case .knownBad: return "skipped-known-bad"
            }
        case .interrupted: return "interrupted"
        case .rolledBack: return "rolled-back"
        case .rollbackFailed: return "rollback-failed"
        }
    }

    /// The failure or the reason, for the journal and the report.
    public var reason: String? {
        switch self {
        case .refused(let reason), .skipped(_, let reason), .interrupted(let reason): return reason
        case .rolledBack(let failure, _), .rollbackFailed(let failure, _): return failure
        case .unchanged, .converged: return nil
        }
    }
}

/// One line of progress: which step, what happened, how long it took.
public struct DeployEvent: Sendable, Equatable, Codable {
    public var environment: String
    public var step: String
    public var message: String
    public var seconds: Double?
    public var ok: Bool

    public init(environment: String, step: String, message: String, seconds: Double? = nil, ok: Bool = true) {
        self.environment = environment
        self.step = step
        self.message = message
        self.seconds = seconds
        self.ok = ok
    }
}

/// Where a reconcile tells what it does: the plan it will execute, each step, pull progress.
/// The CLI prints it; tests record it.
public protocol DeployReporter: Sendable {
    /// The plan that will be executed (made under the lock), once per environment.
    func plan(_ plan: EnvironmentPlan)
    func event(_ event: DeployEvent)
    /// Pull progress for a terminal: one summary line, and whether it is a milestone (a layer
    /// appeared or finished) rather than a byte count. Called many times a second.
    func pullProgress(environment: String, line: String, milestone: Bool)
}

extension DeployReporter {
    public func pullProgress(environment: String, line: String, milestone: Bool) {}
}

/// Keeps the write-ahead record of one deploy: each step is saved before it is taken. A save that
/// fails is reported once and the deploy goes on (the engine's names stay the source of truth);
/// only the first save, before anything changed, may stop a deploy.
public final class DeployRecorder: Sendable {
    private let store: any StateStore
    private let record: Locked<DeployRecord>
    private let warned = Locked(false)
    private let warn: @Sendable (String) -> Void
    private let versionFailed = Locked(false)

    public init(store: any StateStore, record: DeployRecord, warn: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.record = Locked(record)
        self.warn = warn
    }

    /// Saves the first record; a failure here means nothing may change.
    public func begin() throws { try store.saveDeployRecord(current) }

    public var current: DeployRecord { record.withLock { $0 } }

    /// Marks that the new version itself failed (its gate, or a check through the port), as
    /// opposed to the engine refusing an operation: only such a failure makes a revision known bad.
    public func versionFailedItsChecks() { versionFailed.withLock { $0 = true } }

    public var didVersionFail: Bool { versionFailed.withLock { $0 } }

    /// Moves to `step`, applying `change`, and saves.
    public func step(_ step: DeployRecord.Step, _ change: (inout DeployRecord) -> Void = { _ in }) {
        let snapshot = record.withLock { record in
            record.step = step
            change(&record)
            return record
        }
        do {
            try store.saveDeployRecord(snapshot)
        } catch {
            let first = warned.withLock { warned in
                defer { warned = true }
                return !warned
            }
            if first { warn("cannot record the deploy's progress (\(error)); it goes on") }
        }
    }
}

/// Everything a deploy touches, passed to the strategy.
public struct DeployContext: Sendable {
    public var engine: any ContainerEngine
    public var verifier: Verifier
    public var clock: any DeployClock
    public var reporter: any DeployReporter
    public var recorder: DeployRecorder
    /// Wall-clock time for labels.
    public var wallClock: @Sendable () -> Date
    /// The environment file's revision in git, for the container's labels.
    public var revision: FileRevision?
    /// The active container when it never passed its gate (an earlier apply was interrupted while
    /// checking it): it is re-gated, and kept as an unverified backup when replaced.
    public var unverifiedID: String?
    /// Test hook: the process dies at the named step (see `StopStartStrategy.Step`).
    public var abortAt: String?
    /// Where `secrets_mode: file` writes secret files; nil when none is set up.
    public var secretFiles: (any SecretFileStore)?
    /// The blue-green proxies' folders and runtime API; nil when none is set up.
    public var proxies: (any ProxyRuntime)?
    /// Hides the environment's secret values: a failed container's log lines may print them, and
    /// those lines go to the output, the journal and the failed-revision record.
    public var redactions = Redactions()

    public init(
        engine: any ContainerEngine, probe: any HealthProbe, clock: any DeployClock, reporter: any DeployReporter,
        recorder: DeployRecorder, wallClock: @escaping @Sendable () -> Date = { Date() }, revision: FileRevision? = nil,
        unverifiedID: String? = nil, abortAt: String? = nil, secretFiles: (any SecretFileStore)? = nil,
        proxies: (any ProxyRuntime)? = nil
    ) {
        self.engine = engine
        self.verifier = Verifier(engine: engine, probe: probe, clock: clock)
        self.clock = clock
        self.reporter = reporter
        self.recorder = recorder
        self.wallClock = wallClock
        self.revision = revision
        self.unverifiedID = unverifiedID
        self.abortAt = abortAt
        self.secretFiles = secretFiles
        self.proxies = proxies
    }

    /// Removes a container by id, and its secret files when it has any.
    func remove(_ id: String, labels: [String: String]) async throws {
        try await engine.removeContainer(id, force: true)
        if let folder = labels[Labels.secretFolder] { secretFiles?.remove(folder) }
    }

    /// Removes the backups beyond what `spec` keeps (and every unverified one); the deploy converged.
    func prune(_ spec: EnvironmentSpec, backups: [ContainerSnapshot], summary: String) async -> DeployOutcome {
        for backup in BackupPolicy.surplus(backups, of: spec) {
            do {
                try await remove(backup.id, labels: backup.labels)
                say(spec, "prune", "removed old backup \(backup.name)")
            } catch {
                say(spec, "prune", "could not remove \(backup.name): \(error)", ok: false)
            }
        }
        return .converged(summary)
    }

    /// Reports `failure` and returns it with the failed container's last log lines.
    func failed(_ spec: EnvironmentSpec, _ id: String, _ failure: String) async -> String {
        say(spec, "failed", failure, ok: false)
        guard let logs = try? await engine.logs(id, tail: 10), !logs.isEmpty else { return failure }
        let lines = redactions.apply(logs.split(separator: "\n").suffix(5).joined(separator: " | "))
        say(spec, "logs", lines, ok: false)
        return failure + "; last log lines: \(lines)"
    }

    /// Reports one step of `spec`'s deploy; `since` adds how long it took.
    func say(_ spec: EnvironmentSpec, _ step: String, _ message: String, since: Duration? = nil, ok: Bool = true) {
        reporter.event(
            DeployEvent(
                environment: spec.environment, step: step, message: message,
                seconds: since.map { (clock.now() - $0).seconds }, ok: ok))
    }
}

/// How a new version replaces the running one. `StopStartStrategy` is the seed's: back up, stop,
/// start the new one, gate it, roll back on failure. A blue-green strategy behind a proxy, or a
/// Swarm service update, can take its place without touching the planner or the gate.
public protocol ReplaceStrategy: Sendable {
    /// Carries out `plan` (create, replace, start, or in sync with pruning); the write-ahead
    /// record's steps go through `context.recorder`.
    func deploy(_ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, context: DeployContext) async
        -> DeployOutcome
}
