/// Runs the deploy gate against a started container: health (driven by `HealthGate`), then smoke
/// checks, then the performance check. Watches the container between probes so that an exit
/// fails the gate at once.
///
/// The whole gate has one deadline of its own, `EnvironmentSpec.gateBound(healthOnly:)` after
/// `startedAt`, the moment the engine's start returned (not when it was asked: a loaded engine
/// can take seconds to start a container, and that must not eat the startup period). Every
/// probe's timeout is cut to what is left of it, and once it has passed the gate fails, whatever
/// the probes or the engine do.
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
        /// The failure was not the version's: the container was removed or paused during its
        /// gate (by a person), or the engine stopped answering.
        public var interfered = false
    }

    /// Gates a started container. `restartsBefore` is its restart count from before it was started
    /// (read after the start, a crash and restart in between would go unseen).
    /// `healthOnly` skips smoke and performance (used for a restored backup).
    /// `target` is where requests go: the environment's public port unless given (blue-green
    /// gates a new version at its own address, before the proxy sends it anything).
    /// With `containerID` nil (a Swarm service: Swarm watches its own tasks), only the probes run.
    public func verify(
        _ spec: EnvironmentSpec, containerID: String?, startedAt: Duration, restartsBefore: Int,
        healthOnly: Bool = false, target: ProbeTarget? = nil
    ) async -> Verdict {
        var run = Run(
            verifier: self, spec: spec, deadline: startedAt + spec.gateBound(healthOnly: healthOnly),
            bound: spec.gateBound(healthOnly: healthOnly),
            target: target ?? ProbeTarget(host: spec.probeHost, port: spec.port))
        var gate = HealthGate(policy: spec.health)
        var step = gate.started()
        while true {
            switch step {
            case .passed(let attempt, let after):
                run.lines.append("health \(spec.health.path) ok after \(Self.seconds(after)) (attempt \(attempt))")
                return healthOnly ? Verdict(failure: nil, lines: run.lines) : await run.checks()
            case .failed(let reason):
                // Probes that failed while the engine could not be reached are the engine's failure,
                // not the version's (dockerd killed mid-gate): not remembered as a bad version.
                if let lost = run.engineLost {
                    return Verdict(
                        failure: "\(reason); the Docker engine stopped answering during the gate (\(lost))",
                        lines: run.lines, interfered: true)
                }
                return Verdict(failure: reason, lines: run.lines)
            case .probe(let delay):
                if let overdue = run.overdue() { return overdue }
                if delay > .zero { try? await clock.sleep(for: min(delay, run.left)) }
                if let overdue = run.overdue() { return overdue }
                let elapsed = clock.now() - startedAt
                let container: ContainerSnapshot?
                guard let containerID else {
                    let answer = await run.get(spec.health.path)
                    step = gate.probed(Judge.health(answer, spec.health), at: clock.now() - startedAt)
                    continue
                }
                do {
                    // Within what is left of the gate: an engine (or the ssh link to it) that stops
                    // answering must not hold the gate past its deadline, and must be named as the cause.
                    container = try await Deadline.run(max(.milliseconds(1), run.left)) {
                        try await engine.inspectContainer(containerID)
                    }
                    run.engineLost = nil
                } catch is DeadlineExceeded {
                    return Verdict(
                        failure: "the Docker engine did not answer during the gate (an inspect of the container took "
                            + "longer than the gate's deadline of \(Quantities.format(run.bound))); check the engine "
                            + "and the connection to it",
                        lines: run.lines, interfered: true)
                } catch {
                    // The engine answered with an error; the probe below still tells whether it serves.
                    if case EngineError.unreachable = error { run.engineLost = "\(error)" }
                    container = ContainerSnapshot(id: containerID, name: "", image: "", imageID: "", state: .running)
                }
                guard let container else {
                    return Verdict(
                        failure: "the container \(containerID.prefix(12)) was removed during its gate "
                            + "(docker rm?) \(Quantities.format(elapsed)) after start",
                        lines: run.lines, interfered: true)
                }
                // A restart policy brings a crashed container straight back: a restart counts as an exit.
                if [.exited, .dead, .restarting].contains(container.state) || container.restartCount > restartsBefore {
                    // Once restarted and running again, the engine no longer knows the exit code.
                    let restarted = container.state == .running
                    step = gate.containerExited(
                        code: restarted ? nil : container.exitCode,
                        restarts: container.restartCount - restartsBefore, at: elapsed)
                    continue
                }
                if let overdue = run.overdue() { return overdue }
                if container.state == .paused {
                    return Verdict(
                        failure: "the container was paused during its gate (docker pause?)", lines: run.lines,
                        interfered: true)
                }
                let answer = await run.get(spec.health.path)
                step = gate.probed(Judge.health(answer, spec.health), at: clock.now() - startedAt)
            }
        }
    }

    /// One gate in progress: its deadline and the lines it has reported.
    private struct Run {
        let verifier: Verifier
        let spec: EnvironmentSpec
        let deadline: Duration
        let bound: Duration
        let target: ProbeTarget
        var lines: [String] = []
        /// Why the engine could not be reached at the last look, while it could not.
        var engineLost: String?

        var left: Duration { max(.zero, deadline - verifier.clock.now()) }

        /// The failure once the deadline has passed.
        func overdue() -> Verdict? {
            guard verifier.clock.now() >= deadline else { return nil }
            return Verdict(
                failure: "the gate did not finish within its deadline of \(Quantities.format(bound)) "
                    + "(startup + attempts × interval, smoke and performance checks, each request at most "
                    + "\(Quantities.format(spec.health.timeout)))",
                lines: lines)
        }

        /// GET `path` on the container's port, with the request's timeout cut to what is left.
        func get(_ path: String) async -> HTTPAnswer {
            await verifier.probe.get(
                host: target.host, port: target.port, path: path,
                timeout: max(.milliseconds(1), min(spec.health.timeout, left)))
        }

        mutating func checks() async -> Verdict {
            for check in spec.smoke {
                if let overdue = overdue() { return overdue }
                let answer = await get(check.path)
                guard answer.status == check.expectStatus else {
                    let got = answer.status.map { "returned \($0)" } ?? (answer.error ?? "no answer")
                    return Verdict(
                        failure: "smoke GET \(check.path) \(got), expected \(check.expectStatus)", lines: lines)
                }
                lines.append("smoke GET \(check.path) \(check.expectStatus) ok")
            }
            guard let performance = spec.performance else { return Verdict(failure: nil, lines: lines) }
            var latencies: [Duration] = []
            for _ in 0..<performance.requests {
                if let overdue = overdue() { return overdue }
                let answer = await get(performance.path)
                guard let status = answer.status else {
                    return Verdict(
                        failure: "performance GET \(performance.path): \(answer.error ?? "no answer")", lines: lines)
                }
                guard status == performance.expectStatus else {
                    return Verdict(
                        failure: "performance GET \(performance.path) returned \(status), expected "
                            + "\(performance.expectStatus)",
                        lines: lines)
                }
                latencies.append(answer.latency)
            }
            let p95 = Verifier.percentile(latencies, 0.95)
            let summary =
                "performance GET \(performance.path) p95 \(Verifier.millis(p95)) over \(performance.requests) requests"
            guard p95 <= performance.maxP95 else {
                return Verdict(
                    failure: "\(summary), over the \(Verifier.millis(performance.maxP95)) bound", lines: lines)
            }
            lines.append("\(summary) ok (bound \(Verifier.millis(performance.maxP95)))")
            return Verdict(failure: nil, lines: lines)
        }
    }

    /// The nearest-rank percentile.
    static func percentile(_ values: [Duration], _ quantile: Double) -> Duration {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .zero }
        let rank = Int(saturating: (quantile * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }

    static func seconds(_ duration: Duration) -> String {
        let value = duration.seconds
        return value < 10 ? "\((value * 10).rounded() / 10) s" : "\(Int(saturating: value.rounded())) s"
    }

    static func millis(_ duration: Duration) -> String { "\(duration.milliseconds)ms" }
}

/// Where the gate sends its requests.
public struct ProbeTarget: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

extension EnvironmentSpec {
    /// The spec a restored backup is checked with: the file's health check, never stricter than
    /// the defaults in time (startup 15 s, 10 attempts). The old version has served before; a file
    /// that tightened the gate for the new one must not fail it (seen: attempts 30 → 3 with an
    /// image that answers after 3 s left nothing serving).
    public var forRestore: EnvironmentSpec {
        var spec = self
        let defaults = HealthPolicy()
        spec.health.startup = max(health.startup, defaults.startup)
        spec.health.attempts = max(health.attempts, defaults.attempts)
        return spec
    }

    /// The longest a gate may take from the start: the health budget and one more probe, then each
    /// smoke and performance request at its timeout, plus a margin for the engine's answers.
    public func gateBound(healthOnly: Bool = false) -> Duration {
        let requests = healthOnly ? 0 : smoke.count + (performance?.requests ?? 0)
        return health.budget + health.timeout * (requests + 1) + .seconds(5)
    }

    /// The longest one deploy of this environment may hold its lock: stopping the old version, the
    /// gate, and a rollback (another stop and a health gate), with a margin.
    public var deployBound: Duration {
        stopTimeout * 2 + gateBound() + gateBound(healthOnly: true) + proxy.drainTimeout + .seconds(120)
    }
}
