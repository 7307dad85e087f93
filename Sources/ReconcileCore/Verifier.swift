/// Runs the deploy gate against a started container: health (driven by `HealthGate`), then smoke
/// checks, then the performance check. Watches the container between probes so that an exit
/// fails the gate at once.
public struct Verifier: Sendable {
    public let engine: any ContainerEngine
    public let probe: any HealthProbe
    public let clock: any DeployClock

    public init(engine: any ContainerEngine, probe: any HealthProbe, clock: any DeployClock) {
        self.engine = engine
        self.probe = probe
        self.clock = clock
    }

    /// What the gate found: nil reason when every check passed.
    public struct Verdict: Sendable, Equatable {
        public var failure: String?
        /// One line per check that ran, for the report.
        public var lines: [String]
    }

    /// Gates a started container. `restartsBefore` is its restart count from before it was started
    /// (read after the start, a crash and restart in between would go unseen).
    /// `healthOnly` skips smoke and performance (used for a restored backup).
    public func verify(
        _ spec: EnvironmentSpec, containerID: String, startedAt: Duration, restartsBefore: Int,
        healthOnly: Bool = false
    ) async -> Verdict {
        var lines: [String] = []
        var gate = HealthGate(policy: spec.health)
        var step = gate.started()
        while true {
            switch step {
            case .passed(let attempt, let after):
                lines.append("health \(spec.health.path) ok after \(Self.seconds(after)) (attempt \(attempt))")
                return healthOnly ? Verdict(failure: nil, lines: lines) : await checks(spec, lines: lines)
            case .failed(let reason):
                return Verdict(failure: reason, lines: lines)
            case .probe(let delay):
                if delay > .zero { try? await clock.sleep(for: delay) }
                let elapsed = clock.now() - startedAt
                // A restart policy brings a crashed container straight back: a restart counts as an exit.
                if let container = try? await engine.inspectContainer(containerID),
                    [.exited, .dead, .restarting].contains(container.state) || container.restartCount > restartsBefore
                {
                    // Once restarted and running again, the engine no longer knows the exit code.
                    let restarted = container.state == .running
                    step = gate.containerExited(
                        code: restarted ? nil : container.exitCode,
                        restarts: container.restartCount - restartsBefore, at: elapsed)
                    continue
                }
                let answer = await probe.get(
                    host: spec.probeHost, port: spec.port, path: spec.health.path, timeout: spec.health.timeout)
                step = gate.probed(Judge.health(answer, spec.health), at: clock.now() - startedAt)
            }
        }
    }

    private func checks(_ spec: EnvironmentSpec, lines: [String]) async -> Verdict {
        var lines = lines
        for check in spec.smoke {
            let answer = await probe.get(
                host: spec.probeHost, port: spec.port, path: check.path, timeout: spec.health.timeout)
            guard answer.status == check.expectStatus else {
                let got = answer.status.map { "returned \($0)" } ?? (answer.error ?? "no answer")
                return Verdict(failure: "smoke GET \(check.path) \(got), expected \(check.expectStatus)", lines: lines)
            }
            lines.append("smoke GET \(check.path) \(check.expectStatus) ok")
        }
        if let performance = spec.performance {
            var latencies: [Duration] = []
            for _ in 0..<performance.requests {
                let answer = await probe.get(
                    host: spec.probeHost, port: spec.port, path: performance.path, timeout: spec.health.timeout)
                guard answer.status != nil else {
                    return Verdict(
                        failure: "performance GET \(performance.path): \(answer.error ?? "no answer")", lines: lines)
                }
                latencies.append(answer.latency)
            }
            let p95 = Self.percentile(latencies, 0.95)
            let summary =
                "performance GET \(performance.path) p95 \(Self.millis(p95)) over \(performance.requests) requests"
            guard p95 <= performance.maxP95 else {
                return Verdict(failure: "\(summary), over the \(Self.millis(performance.maxP95)) bound", lines: lines)
            }
            lines.append("\(summary) ok (bound \(Self.millis(performance.maxP95)))")
        }
        return Verdict(failure: nil, lines: lines)
    }

    /// The nearest-rank percentile.
    static func percentile(_ values: [Duration], _ quantile: Double) -> Duration {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .zero }
        let rank = Int((quantile * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }

    static func seconds(_ duration: Duration) -> String {
        let value = duration.seconds
        return value < 10 ? "\((value * 10).rounded() / 10) s" : "\(Int(value.rounded())) s"
    }

    static func millis(_ duration: Duration) -> String { "\(duration.milliseconds)ms" }
}
