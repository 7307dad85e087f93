import Foundation
import ReconcileCore

/// Renders plans as terraform-like text, as markdown for a PR comment, or as JSON. Deterministic:
/// environments in the order given, fields in a fixed order.
struct PlanRenderer {
    var plans: [EnvironmentPlan]
    /// ANSI colour for a terminal: added green, changed yellow, removed and conflicts red, as terraform plan.
    var colour = false

    func text() -> String {
        plans.map(environment).joined() + summary() + "\n"
    }

    /// One environment's plan: a header line, the body indented, a blank line.
    func environment(_ plan: EnvironmentPlan) -> String {
        let header =
            "\(plan.environment) (\(plan.file)) → container \(plan.container)" + (plan.engine.map { " on \($0)" } ?? "")
        let tasks = plan.tasks.map { ["  swarm: \($0)"] } ?? []
        let lines = [colour ? "\u{1B}[1m\(header)\u{1B}[0m" : header] + tasks + body(plan).map { "  " + paint($0) }
        return lines.joined(separator: "\n") + "\n\n"
    }

    func markdown() -> String {
        var lines = ["### reconcile plan", "", "| environment | file | action | changes |", "|---|---|---|---|"]
        for plan in plans {
            let count = plan.changes.count + plan.prune.count
            lines.append("| \(plan.environment) | `\(plan.file)` | **\(plan.action.rawValue)** | \(count) |")
        }
        for plan in plans where plan.hasChanges || !plan.warnings.isEmpty || !plan.conflicts.isEmpty {
            var block: [String] = []
            for change in plan.changes {
                if let old = change.old { block.append("- \(change.field): \(Self.clean(old))") }
                if let new = change.new { block.append("+ \(change.field): \(Self.clean(new))") }
            }
            for item in plan.prune { block.append("- container \(item.name) (\(item.reason))") }
            if let proxy = plan.proxy { block.append("~ proxy: \(proxy.action.rawValue): \(Self.clean(proxy.reason))") }
            for item in plan.stop { block.append("~ stop \(item.name) (\(item.reason))") }
            for conflict in plan.conflicts { block.append("! conflict: \(conflict)") }
            if let tasks = plan.tasks { block.append("  swarm: \(Self.clean(tasks))") }
            // A fence longer than any run of backticks in the values: a value cannot close it.
            let fence = String(repeating: "`", count: max(3, Self.longestBacktickRun(block) + 1))
            let engine = plan.engine.map { " on \(Self.clean($0))" } ?? ""
            lines += [
                "", "#### \(plan.environment): \(plan.action.rawValue) `\(plan.container)`\(engine)", "",
                fence + "diff",
            ]
            lines += block
            lines.append(fence)
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
            switch (change.old.map(Self.clean), change.new.map(Self.clean)) {
            case (nil, let new?): lines.append("    + \(change.field): \(new)")
            case (let old?, nil): lines.append("    - \(change.field): \(old)")
            case (let old?, let new?): lines.append("    ~ \(change.field): \(old) → \(new)")
            case (nil, nil): break
            }
        }
        for conflict in plan.conflicts { lines.append("    ! \(conflict)") }
        if let proxy = plan.proxy {
            let mark = proxy.action == .create ? "+" : proxy.action == .remove ? "-" : "~"
            lines.append("\(mark) proxy: \(proxy.action.rawValue): \(Self.clean(proxy.reason))")
        }
        for item in plan.stop { lines.append("~ stop \(item.name) (\(item.id.prefix(12))): \(item.reason)") }
        for item in plan.prune { lines.append("- remove \(item.name) (\(item.id.prefix(12))): \(item.reason)") }
        for warning in plan.warnings { lines.append("warning: \(warning)") }
        if let holder = plan.lockedBy { lines.append("note: an apply is in progress (lock held by \(holder))") }
        if plan.approvalRequired && plan.hasChanges { lines.append("approval required: apply needs --approve") }
        return lines
    }

    /// A body line in the colour of its mark, when colour is on.
    func paint(_ line: String) -> String {
        guard colour else { return line }
        let mark = line.drop { $0 == " " }.first
        let code: String
        switch mark {
        case "+": code = "32"
        case "~", ">": code = "33"
        case "-", "!": code = "31"
        default: code = line.hasPrefix("warning:") || line.hasPrefix("approval required") ? "33" : ""
        }
        return code.isEmpty ? line : "\u{1B}[\(code)m\(line)\u{1B}[0m"
    }

    /// A value as one printable line: control characters (a newline, a carriage return, ESC) are
    /// written as escapes, so a value can neither draw over a terminal line nor start a new one.
    static func clean(_ value: String) -> String {
        var result = ""
        for scalar in value.unicodeScalars {
            switch scalar.value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0x1B: result += "\\e"
            default:
                if let escaped = Printable.escape(scalar) {
                    result += escaped
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    static func longestBacktickRun(_ lines: [String]) -> Int {
        var longest = 0
        for line in lines {
            var run = 0
            for character in line {
                run = character == "`" ? run + 1 : 0
                longest = max(longest, run)
            }
        }
        return longest
    }

    private func counts() -> [String: Int] {
        var counts = ["create": 0, "replace": 0, "start": 0, "in-sync": 0, "conflict": 0, "prune": 0]
        for plan in plans {
            counts[plan.action.rawValue, default: 0] += 1
            counts["prune", default: 0] += plan.prune.count
            if plan.proxy != nil || !plan.stop.isEmpty { counts["proxy", default: 0] += 1 }
        }
        return counts
    }

    func summary() -> String {
        let c = counts()
        let parts = [
            "\(c["create"] ?? 0) to create", "\(c["replace"] ?? 0) to replace", "\(c["start"] ?? 0) to start",
            "\(c["prune"] ?? 0) to remove", "\(c["in-sync"] ?? 0) in sync", "\(c["conflict"] ?? 0) in conflict",
        ]
        let proxies = c["proxy"] ?? 0
        let extra = proxies == 0 ? "" : ", \(proxies) with proxy changes"
        return "Plan: " + parts.joined(separator: ", ") + extra + "."
    }
}
