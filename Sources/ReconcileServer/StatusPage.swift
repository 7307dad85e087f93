import Foundation
import ReconcileCore

/// The read-only status page of `reconcile watch`: one section per environment with what `status`
/// shows (live container, image and revision, health, uptime, backups, hold and failed-revision
/// notes) and its last deploys from the journal. Server-rendered HTML, every value escaped, no
/// script; it refreshes itself every 10 s.
public struct StatusPage: Sendable {
    public var statuses: [EnvironmentStatus]
    public var journal: [JournalEntry]
    public var holds: [String: Hold]
    public var failures: [String: FailedDeploy]
    public var problems: [String]
    public var engineReachable: Bool
    public var now: Date

    public init(
        statuses: [EnvironmentStatus], journal: [JournalEntry], holds: [String: Hold] = [:],
        failures: [String: FailedDeploy] = [:], problems: [String] = [], engineReachable: Bool, now: Date
    ) {
        self.statuses = statuses
        self.journal = journal
        self.holds = holds
        self.failures = failures
        self.problems = problems
        self.engineReachable = engineReachable
        self.now = now
    }

    public func html() -> String {
        var body: [String] = [
            "<h1>reconcile watch</h1>",
            "<p>engine: \(engineReachable ? "reachable" : "<b>unreachable</b>") · \(Self.escape(Self.time(now)))</p>",
        ]
        for problem in problems { body.append("<p class=bad>\(Self.escape(problem))</p>") }
        for status in statuses { body.append(section(status)) }
        return """
            <!doctype html>
            <html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
            <title>reconcile watch</title>
            <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.bad{color:#b00}</style>
            </head><body>
            \(body.joined(separator: "\n"))
            </body></html>

            """
    }

    func section(_ status: EnvironmentStatus) -> String {
        let spec = status.spec
        let active = status.active
        let uptime =
            active.flatMap { container in
                container.state == .running ? container.startedAt.map { Int(now.timeIntervalSince($0)) } : nil
            }.map { "\(max(0, $0)) s" } ?? "-"
        var rows: [(String, String)] = [
            ("file", spec.file),
            ("container", spec.containerName),
            (
                "state",
                active.map { status.isManaged ? $0.state.rawValue : "unmanaged (\($0.state.rawValue))" } ?? "missing"
            ),
            // A pinned revision runs an image by id: show the reference it was deployed as.
            ("image", active?.shownImage ?? "-"),
            ("digest", status.image?.digest ?? "-"),
            ("revision", active?.labels[Labels.revision].map { String($0.prefix(12)) } ?? "-"),
            ("health", active?.health ?? "-"),
            ("uptime", uptime),
            (
                "port",
                "\(spec.bind):\(spec.port)\(spec.strategy == .blueGreen ? " (blue-green, proxy \(status.proxy?.state.rawValue ?? "missing"))" : "")"
            ),
            (
                "backups",
                status.backups.isEmpty
                    ? "none" : status.backups.map { "\($0.name) (\($0.image))" }.joined(separator: ", ")
            ),
        ]
        if let hold = holds[spec.containerName] {
            rows.append(("held", "at \(hold.revision.prefix(12)) since \(hold.since) (rollback)"))
        }
        if let failed = failures[spec.containerName] {
            rows.append(("failed", "\(failed.named) failed at \(failed.time): \(failed.reason)"))
        }
        let table = rows.map { "<tr><th>\(Self.escape($0.0))</th><td>\(Self.escape($0.1))</td></tr>" }
        let deploys = journal.filter { $0.environment == spec.environment && $0.file == spec.file }.suffix(5).reversed()
        let history =
            deploys.isEmpty
            ? "<p>no deploys in the journal</p>"
            : "<table><tr><th>time</th><th>result</th><th>image</th><th>revision</th><th>seconds</th><th>failed check</th></tr>"
                + deploys.map { entry in
                    let cells = [
                        entry.time, entry.result, entry.newImage, entry.revision.map { String($0.prefix(12)) } ?? "-",
                        String(entry.seconds), entry.failedCheck ?? "",
                    ]
                    return "<tr>" + cells.map { "<td>\(Self.escape($0))</td>" }.joined() + "</tr>"
                }.joined() + "</table>"
        return
            "<h2>\(Self.escape(spec.environment))</h2>\n<table>\(table.joined())</table>\n<h3>last deploys</h3>\n\(history)"
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
