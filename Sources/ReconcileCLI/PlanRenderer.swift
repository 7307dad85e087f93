import Foundation
import ReconcileCore

/// Renders plans as terraform-like text, as markdown for a PR comment, or as JSON. Deterministic:
/// environments in the order given, fields in a fixed order.
struct PlanRenderer {
    var plans: [EnvironmentPlan]

    func text() -> String {
        plans.map(environment).joined() + summary() + "\n"
    }

    /// One environment's plan: a header line, the body indented, a blank line.
    func environment(_ plan: EnvironmentPlan) -> String {
        let lines = ["\(plan.environment) (\(plan.file)) → container \(plan.container)"] + body(plan).map { "  " + $0 }
        return lines.joined(separator: "\n") + "\n\n"
    }

    func markdown() -> String {
        var lines = ["### reconcile plan", "", "| environment | file | action | changes |", "|---|---|---|---|"]
        for plan in plans {
            let count = plan.changes.count + plan.prune.count
            lines.append("| \(plan.environment) | `\(plan.file)` | **\(plan.action.rawValue)** | \(count) |")
        }
        for plan in plans where plan.hasChanges || !plan.warnings.isEmpty || !plan.conflicts.isEmpty {
            lines += ["", "#### \(plan.environment): \(plan.action.rawValue) `\(plan.container)`", "", "```diff"]
            for change in plan.changes {
                if let old = change.old { lines.append("- \(change.field): \(old)") }
                if let new = change.new { lines.append("+ \(change.field): \(new)") }
            }
            for item in plan.prune { lines.append("- container \(item.name) (\(item.reason))") }
            for conflict in plan.conflicts { lines.append("! conflict: \(conflict)") }
            lines.append("```")
            for warning in plan.warnings { lines.append("> ⚠️ \(warning)") }
            if plan.approvalRequired && plan.hasChanges {
                lines.append("> 🔒 approval required: apply needs `--approve`")
            }
        }
        lines += ["", summary()]
        return lines.joined(separator: "\n") + "\n"
    }

    func json() throws -> String {
        struct Document: Encodable {
            var summary: [String: Int]
            var inSync: Bool
            var environments: [EnvironmentPlan]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let document = Document(summary: counts(), inSync: !plans.contains(where: \.hasChanges), environments: plans)
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    private func body(_ plan: EnvironmentPlan) -> [String] {
        var lines: [String] = []
        let id = plan.currentID.map { " (\($0.prefix(12)))" } ?? ""
        switch plan.action {
        case .inSync: lines.append("= in sync\(id)")
        case .create: lines.append("+ create \(plan.container)")
        case .replace: lines.append("~ replace \(plan.container)\(id)")
        case .start: lines.append("> start \(plan.container)\(id)")
        case .conflict: lines.append("! conflict: apply will refuse to change \(plan.container)")
        }
        for change in plan.changes {
            switch (change.old, change.new) {
            case (nil, let new?): lines.append("    + \(change.field): \(new)")
            case (let old?, nil): lines.append("    - \(change.field): \(old)")
            case (let old?, let new?): lines.append("    ~ \(change.field): \(old) → \(new)")
            case (nil, nil): break
            }
        }
        for conflict in plan.conflicts { lines.append("    ! \(conflict)") }
        for item in plan.prune { lines.append("- remove \(item.name) (\(item.id.prefix(12))): \(item.reason)") }
        for warning in plan.warnings { lines.append("warning: \(warning)") }
        if let holder = plan.lockedBy { lines.append("note: an apply is in progress (lock held by \(holder))") }
        if plan.approvalRequired && plan.hasChanges { lines.append("approval required: apply needs --approve") }
        return lines
    }

    private func counts() -> [String: Int] {
        var counts = ["create": 0, "replace": 0, "start": 0, "in-sync": 0, "conflict": 0, "prune": 0]
        for plan in plans {
            counts[plan.action.rawValue, default: 0] += 1
            counts["prune", default: 0] += plan.prune.count
        }
        return counts
    }

    func summary() -> String {
        let c = counts()
        let parts = [
            "\(c["create"] ?? 0) to create", "\(c["replace"] ?? 0) to replace", "\(c["start"] ?? 0) to start",
            "\(c["prune"] ?? 0) to remove", "\(c["in-sync"] ?? 0) in sync", "\(c["conflict"] ?? 0) in conflict",
        ]
        return "Plan: " + parts.joined(separator: ", ") + "."
    }
}
