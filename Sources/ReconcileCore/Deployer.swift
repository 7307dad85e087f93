import Foundation

/// How one environment's apply ended. Each case maps to one exit code.
public enum DeployOutcome: Sendable, Equatable {
    /// Nothing needed changing; nothing was touched.
    case unchanged
    /// The environment now matches its file.
    case converged(String)
    /// Refused before anything changed (conflict, missing secret or image, pull failure).
    case refused(String)
    /// The new version failed its gate; the previous one serves again (or nothing ran before).
    case rolledBack(failure: String, restored: String)
    /// The new version failed and so did the rollback; `state` says exactly what is left.
    case rollbackFailed(failure: String, state: String)

    public var exitCode: Int32 {
        switch self {
        case .unchanged, .converged: return 0
        case .refused: return 1
        case .rolledBack: return 3
        case .rollbackFailed: return 4
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

/// Everything a deploy touches, passed to the strategy.
public struct DeployContext: Sendable {
    public var engine: any ContainerEngine
    public var verifier: Verifier
    public var clock: any DeployClock
    public var report: @Sendable (DeployEvent) -> Void
    /// Wall-clock time for labels and backup names.
    public var wallClock: @Sendable () -> Date
    /// Test hook: the process dies at the named step (see `StopStartStrategy.Step`).
    public var abortAt: String?
    /// The container an earlier, interrupted apply started but never saw pass its gate.
    public var unverifiedID: String?
    /// Records (id) or clears (nil) the container whose gate is running, so a crash mid-gate is
    /// re-gated by the next apply.
    public var markUnverified: @Sendable (String?) -> Void
    /// Pull progress for a terminal: the environment, one summary line, and whether it is a
    /// milestone (a layer appeared or finished) rather than a byte count. Called many times a second.
    public var pullProgress: @Sendable (String, String, Bool) -> Void = { _, _, _ in }

    public init(
        engine: any ContainerEngine, probe: any HealthProbe, clock: any DeployClock,
        report: @escaping @Sendable (DeployEvent) -> Void, wallClock: @escaping @Sendable () -> Date = { Date() },
        abortAt: String? = nil, unverifiedID: String? = nil,
        markUnverified: @escaping @Sendable (String?) -> Void = { _ in }
    ) {
        self.engine = engine
        self.verifier = Verifier(engine: engine, probe: probe, clock: clock)
        self.clock = clock
        self.report = report
        self.wallClock = wallClock
        self.abortAt = abortAt
        self.unverifiedID = unverifiedID
        self.markUnverified = markUnverified
    }
}

/// How a new version replaces the running one. `StopStartStrategy` is the seed's: back up, stop,
/// start the new one, gate it, roll back on failure. A blue-green strategy behind a proxy, or a
/// Swarm service update, can take its place without touching the planner or the gate.
public protocol ReplaceStrategy: Sendable {
    func deploy(
        _ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, revision: String?,
        context: DeployContext
    ) async -> DeployOutcome
}

/// Converges one environment from its plan: refuses what it must, pulls, then hands the change
/// to the strategy. Only awaits through the engine, probe and clock protocols.
public struct Deployer: Sendable {
    public var strategy: any ReplaceStrategy

    public init(strategy: any ReplaceStrategy = StopStartStrategy()) { self.strategy = strategy }

    public func apply(
        _ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, revision: String?, context: DeployContext
    ) async -> DeployOutcome {
        let spec = desired.spec
        var plan = plan
        var host = host
        if spec.pull == .always && plan.action != .conflict {
            // Always means: ask the registry first, then plan against what the tag points at now.
            if let refusal = await pull(spec, context: context) { return .refused(refusal) }
            if let image = try? await context.engine.inspectImage(spec.image.description) {
                host.images[spec.image.description] = image
                plan = Differ.plan(desired, host: host)
            }
        }
        if plan.action == .inSync, let id = context.unverifiedID, id == plan.currentID {
            // An earlier apply died while gating this container: gate it now, roll back if it fails.
            context.report(
                DeployEvent(
                    environment: spec.environment, step: "recover",
                    message:
                        "\(spec.containerName) was never verified (an earlier apply was interrupted); checking it now"))
            plan.action = .start
        }
        guard plan.action != .conflict else {
            return .refused(plan.conflicts.joined(separator: " "))
        }
        guard plan.hasChanges else { return .unchanged }
        if plan.action != .inSync && !desired.missingSecrets.isEmpty {
            return .refused(
                "secret \(desired.missingSecrets.joined(separator: ", ")) not set (process environment or secrets_file); nothing was changed"
            )
        }
        if plan.action == .create || plan.action == .replace {
            if let refusal = await ensureImage(spec, host: host, context: context) { return .refused(refusal) }
        }
        return await strategy.deploy(desired, plan: plan, host: host, revision: revision, context: context)
    }

    /// Pulls per the pull policy (`always` has pulled already); a failure refuses the deploy before
    /// anything running is touched.
    func ensureImage(_ spec: EnvironmentSpec, host: HostState, context: DeployContext) async -> String? {
        let present = host.images[spec.image.description] != nil
        switch spec.pull {
        case .never where !present:
            return "image \(spec.image) is not on this host and pull is never; nothing was changed"
        case .missing where !present:
            return await pull(spec, context: context)
        case .missing, .never, .always:
            return nil
        }
    }

    /// Pulls the spec's image, passing progress on; returns the refusal when the pull fails.
    func pull(_ spec: EnvironmentSpec, context: DeployContext) async -> String? {
        let reference = spec.image.description
        let started = context.clock.now()
        let environment = spec.environment
        let tracker = Locked(PullTracker())
        let progress = context.pullProgress
        do {
            try await context.engine.pull(reference) { line in
                let (milestone, summary) = tracker.withLock { tracker in
                    (tracker.record(line), tracker.summary(of: reference))
                }
                progress(environment, summary, milestone)
            }
            context.report(
                DeployEvent(
                    environment: environment, step: "pull", message: "pulled \(reference)",
                    seconds: (context.clock.now() - started).seconds))
            return nil
        } catch {
            return "\(error); nothing was changed"
        }
    }
}
