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

    /// Counts one reconcile that did something, and sets the environment's state gauges.
    public func reconciled(environment: String, result: Reconciler.Result, wallClock: Date) {
        let dimensions = [("environment", environment)]
        let name = result.drift ? "drift-corrected" : result.outcome.name
        if result.outcome != .unchanged {
            CoreMetrics.Counter(
                label: "reconcile_deploys_total", dimensions: dimensions + [("result", name)], factory: factory
            )
            .increment()
        }
        switch result.outcome {
        case .rolledBack, .rollbackFailed:
            CoreMetrics.Counter(label: "reconcile_rollbacks_total", dimensions: dimensions, factory: factory)
                .increment()
        default: break
        }
        if result.drift {
            CoreMetrics.Counter(label: "reconcile_drift_corrections_total", dimensions: dimensions, factory: factory)
                .increment()
        }
        let inSync: Bool
        switch result.outcome {
        case .unchanged, .converged: inSync = true
        default: inSync = false
        }
        CoreMetrics.Gauge(label: "reconcile_environment_in_sync", dimensions: dimensions, factory: factory).record(
            inSync ? 1 : 0)
        if inSync {
            CoreMetrics.Gauge(
                label: "reconcile_last_success_timestamp_seconds", dimensions: dimensions, factory: factory
            )
            .record(wallClock.timeIntervalSince1970.rounded())
        }
    }

    /// Whether the environment is held at a revision, or skips a revision that failed.
    public func notes(environment: String, held: Bool, failed: Bool) {
        let dimensions = [("environment", environment)]
        CoreMetrics.Gauge(label: "reconcile_environment_held", dimensions: dimensions, factory: factory).record(
            held ? 1 : 0)
        CoreMetrics.Gauge(label: "reconcile_environment_failed", dimensions: dimensions, factory: factory).record(
            failed ? 1 : 0)
    }

    /// How long one gate took (health, smoke and performance), passed or failed.
    public func gate(environment: String, duration: Duration, passed: Bool) {
        Metrics.Timer(
            label: "reconcile_gate_duration_seconds",
            dimensions: [("environment", environment), ("passed", passed ? "true" : "false")],
            preferredDisplayUnit: .seconds, factory: factory
        ).recordNanoseconds(duration.nanoseconds)
    }
}
