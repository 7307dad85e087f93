/// The result of one probe of a new container, already judged against the policy.
public struct ProbeResult: Sendable, Equatable {
    /// True when the answer met `expect_status` and `expect_json`.
    public var passed: Bool
    /// What happened, for a person: `GET /health returned 503`, `connection refused`.
    public var message: String
    /// How long the request took.
    public var latency: Duration

    public init(passed: Bool, message: String, latency: Duration = .zero) {
        self.passed = passed
        self.message = message
        self.latency = latency
    }
}

/// The deploy gate as a state machine. It never sleeps: the caller reports events with the time
/// elapsed since the container started, and does what the returned step says.
///
/// - Probes start at once. During `startup` failures do not count and probes come quickly
///   (every `min(interval, 100ms)`), so a container that is ready at once passes at once.
/// - After `startup`, probes come every `interval`; the gate fails after `attempts` counted
///   failures or at `startup + attempts × interval`, whichever is first.
/// - A container that exits or restarts fails the gate at once.
public struct HealthGate: Sendable {
    public enum Step: Sendable, Equatable {
        /// Probe again after this delay.
        case probe(after: Duration)
        /// Healthy on this attempt, this long after start.
        case passed(attempt: Int, after: Duration)
        /// The deploy must be rolled back; the reason is a sentence a person can act on.
        case failed(reason: String)
    }

    public static let startupCadence: Duration = .milliseconds(100)

    public let policy: HealthPolicy
    public private(set) var attempts = 0
    public private(set) var countedFailures = 0
    public private(set) var lastFailure: String?
    public private(set) var finished = false

    public init(policy: HealthPolicy) { self.policy = policy }

    /// The container has started: probe at once.
    public mutating func started() -> Step { .probe(after: .zero) }

    public mutating func probed(_ result: ProbeResult, at elapsed: Duration) -> Step {
        guard !finished else { return .failed(reason: "the gate has already finished") }
        attempts += 1
        if result.passed {
            finished = true
            return .passed(attempt: attempts, after: elapsed)
        }
        lastFailure = result.message
        if elapsed >= policy.startup { countedFailures += 1 }
        if countedFailures >= policy.attempts || elapsed >= policy.budget {
            finished = true
            return .failed(reason: summary(elapsed))
        }
        let cadence = elapsed < policy.startup ? min(policy.interval, Self.startupCadence) : policy.interval
        return .probe(after: min(cadence, policy.budget - elapsed))
    }

    /// The container exited (or is restarting after an exit): fail at once.
    /// `restarts` counts the restarts its restart policy made meanwhile; `code` is nil when the
    /// engine no longer reports it (the container runs again after a restart).
    public mutating func containerExited(code: Int?, restarts: Int = 0, at elapsed: Duration) -> Step {
        finished = true
        let status = code.map { "with code \($0)" } ?? "unexpectedly"
        let restarted =
            restarts > 0 ? " and was restarted by its restart policy (\(restarts) time\(restarts == 1 ? "" : "s"))" : ""
        return .failed(reason: "container exited \(status)\(restarted) \(Quantities.format(elapsed)) after start")
    }

    private func summary(_ elapsed: Duration) -> String {
        let last = lastFailure.map { "; last: \($0)" } ?? ""
        let probes = attempts == 1 ? "1 probe" : "\(attempts) probes"
        return "health \(policy.path) never passed: \(probes) failed in \(Quantities.format(elapsed))\(last)"
    }
}
