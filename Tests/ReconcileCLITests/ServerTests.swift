import Foundation
import Logging
import ReconcileCLI
import ReconcileCore
import ReconcileServer
import ReconcileTestSupport
import Testing

/// What watch shows: its log lines, its metrics in Prometheus' format, and the status page.
struct ServerTests {
    @Test func logLinesAreTextOrOneJSONObjectEach() throws {
        let output = CapturedOutput()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var text = Logger(label: "t") { _ in LineLogHandler(format: .text, now: { now }) { output.write($0) } }
        text.logLevel = .info
        text.info("staging: converged", metadata: ["trigger": "event"])
        #expect(output.text == "2027-01-15T08:00:00Z info    staging: converged trigger=event\n")

        let json = CapturedOutput()
        let logger = Logger(label: "t") { _ in LineLogHandler(format: .json, now: { now }) { json.write($0) } }
        logger.error("a \"quoted\"\nline")
        let object = try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [String: String]
        #expect(object?["message"] == "a \"quoted\"\nline" && object?["level"] == "error")
        #expect(json.text.filter { $0 == "\n" }.count == 1, "one line per message")

        // A file name with a newline and an escape code cannot forge a line of the text log.
        let forged = CapturedOutput()
        let plain = Logger(label: "t") { _ in LineLogHandler(format: .text, now: { now }) { forged.write($0) } }
        plain.error("bad.yml\n2027-01-15T08:00:00Z info    staging: converged\u{1B}[2K")
        #expect(forged.text.filter { $0 == "\n" }.count == 1, "\(forged.text)")
        #expect(!forged.text.contains("\u{1B}"))
    }

    @Test func aForgottenEnvironmentLeavesTheMetrics() {
        let metrics = WatchMetrics()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        metrics.reconciled(
            environment: "old", result: .init(outcome: .converged("ok"), plan: nil, seconds: 1), wallClock: now)
        metrics.notes(environment: "old", held: false, failed: true)
        metrics.gate(environment: "old", duration: .seconds(1), passed: true)
        #expect(metrics.exposition().contains(#"environment="old""#))
        metrics.forget(environment: "old")
        #expect(!metrics.exposition().contains(#"environment="old""#), "\(metrics.exposition())")
    }

    @Test func metricsCountDeploysRollbacksAndDrift() {
        let metrics = WatchMetrics()
        metrics.engine(reachable: true)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        metrics.reconciled(
            environment: "staging", result: .init(outcome: .converged("ok"), plan: nil, seconds: 1), wallClock: now)
        metrics.reconciled(
            environment: "staging",
            result: .init(outcome: .rolledBack(failure: "x", restored: "y"), plan: nil, seconds: 1), wallClock: now)
        metrics.reconciled(
            environment: "staging", result: .init(outcome: .converged("ok"), plan: nil, seconds: 1, drift: true),
            wallClock: now)
        metrics.gate(environment: "staging", duration: .milliseconds(300), passed: true)
        let text = metrics.exposition()
        #expect(text.contains(#"reconcile_deploys_total{environment="staging",result="converged"} 1"#), "\(text)")
        #expect(text.contains(#"reconcile_deploys_total{environment="staging",result="rolled-back"} 1"#))
        #expect(text.contains(#"reconcile_deploys_total{environment="staging",result="drift-corrected"} 1"#))
        #expect(text.contains(#"reconcile_rollbacks_total{environment="staging"} 1"#))
        #expect(text.contains(#"reconcile_drift_corrections_total{environment="staging"} 1"#))
        #expect(text.contains(#"reconcile_last_success_timestamp_seconds{environment="staging"} 1800000000"#))
        #expect(text.contains("reconcile_engine_up 1"))
        #expect(
            text.contains(#"reconcile_gate_duration_seconds_bucket{environment="staging",passed="true",le="0.5"} 1"#))
    }

    @Test func theStatusPageEscapesEverythingAndShowsTheJournal() {
        var spec = Build.spec(service: "app", environment: "<script>", image: "acme/app:v1", port: 8001)
        spec.file = "envs/a&b.yml"
        let live = ContainerSnapshot(
            id: "abc", name: spec.containerName, image: "acme/app:v1", imageID: "sha256:1", state: .running,
            labels: [Labels.managed: "true", Labels.service: "app", Labels.environment: "<script>"])
        let entry = JournalEntry(
            time: "2026-11-27T20:00:00Z", environment: "<script>", file: "envs/a&b.yml", revision: "abcdef123456789",
            oldImage: nil, oldImageID: nil, newImage: "acme/app:v1", newImageID: nil, action: "create",
            result: "converged", exitCode: 0, seconds: 1.5, failedCheck: nil)
        let page = StatusPage(
            statuses: [EnvironmentStatus(spec: spec, active: live, image: nil, backups: [])], journal: [entry],
            engineReachable: true, now: Date(timeIntervalSince1970: 1_800_000_000)
        ).html()
        #expect(!page.contains("<script>"))
        #expect(page.contains("&lt;script&gt;") && page.contains("envs/a&amp;b.yml"))
        #expect(page.contains("<td>converged</td>") && page.contains("abcdef123456"))
        #expect(!page.contains("<script"), "no script on the page")
    }
}
