import CoreMetrics
import Foundation
import Metrics
import Prometheus
import ReconcileCore

/// The metrics of `reconcile watch`, made through swift-metrics with a Prometheus factory of its
/// own (no global bootstrap: two watches in one process, as in tests, keep their numbers apart)
/// and exported in Prometheus' text format by `exposition()`.
public final class WatchMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let engineUp: CoreMetrics.Gauge
    /// Every metric made for an environment, so that `forget` can take them out of /metrics.
    private let made = Locked([String: [String: any Destroyable]]())

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Gate durations from a 100 ms health check to the longest gates people configure.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
        ]
        self.factory = factory
        engineUp = CoreMetrics.Gauge(label: "reconcile_engine_up", factory: factory)
        engineUp.record(0)
    }

    /// The Prometheus text format of every metric.
    public func exposition() -> String { registry.emitToString() }

    public func engine(reachable: Bool) { engineUp.record(reachable ? 1 : 0) }

    /// Takes an environment that is gone (its file removed) out of /metrics.
    public func forget(environment: String) {
        let metrics = made.withLock { $0.removeValue(forKey: environment) } ?? [:]
        for metric in metrics.values { metric.destroy() }
    }

    private func counter(_ label: String, _ environment: String, _ extra: [(String, String)] = [])
        -> CoreMetrics.Counter
    {
        remember(label, environment, extra) {
            CoreMetrics.Counter(label: label, dimensions: [("environment", environment)] + extra, factory: factory)
        }
    }

    private func gauge(_ label: String, _ environment: String) -> CoreMetrics.Gauge {
        remember(label, environment, []) {
            CoreMetrics.Gauge(label: label, dimensions: [("environment", environment)], factory: factory)
        }
    }

    private func remember<M: Destroyable>(
        _ label: String, _ environment: String, _ extra: [(String, String)], make: () -> M
    ) -> M {
        let key = ([label] + extra.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
        return made.withLock { made in
            if let existing = made[environment]?[key] as? M { return existing }
            let metric = make()
            made[environment, default: [:]][key] = metric
            return metric
        }
    }

    /// Counts one reconcile that did something, and sets the environment's state gauges.
    public func reconciled(environment: String, result: Reconciler.Result, wallClock: Date) {
        let name = result.drift ? "drift-corrected" : result.outcome.name
        if result.outcome != .unchanged {
            counter("reconcile_deploys_total", environment, [("result", name)]).increment()
        }
        switch result.outcome {
        case .rolledBack, .rollbackFailed: counter("reconcile_rollbacks_total", environment).increment()
        default: break
        }
        if result.drift { counter("reconcile_drift_corrections_total", environment).increment() }
        let inSync: Bool
        switch result.outcome {
        case .unchanged, .converged: inSync = true
        default: inSync = false
        }
        gauge("reconcile_environment_in_sync", environment).record(inSync ? 1 : 0)
        if inSync {
            gauge("reconcile_last_success_timestamp_seconds", environment).record(
                wallClock.timeIntervalSince1970.rounded())
        }
    }

    /// Whether the environment is held at a revision, or skips a revision that failed.
    public func notes(environment: String, held: Bool, failed: Bool) {
        gauge("reconcile_environment_held", environment).record(held ? 1 : 0)
        gauge("reconcile_environment_failed", environment).record(failed ? 1 : 0)
    }

    /// How long one gate took (health, smoke and performance), passed or failed.
    public func gate(environment: String, duration: Duration, passed: Bool) {
        let passed = [("passed", passed ? "true" : "false")]
        remember("reconcile_gate_duration_seconds", environment, passed) {
            Metrics.Timer(
                label: "reconcile_gate_duration_seconds", dimensions: [("environment", environment)] + passed,
                preferredDisplayUnit: .seconds, factory: factory)
        }.recordNanoseconds(duration.nanoseconds)
    }
}

/// A swift-metrics metric that can be taken out of its factory.
protocol Destroyable: AnyObject, Sendable {
    func destroy()
}

extension CoreMetrics.Counter: Destroyable {}
extension CoreMetrics.Gauge: Destroyable {}
extension Metrics.Timer: Destroyable {}
