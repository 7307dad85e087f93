import Foundation
import ReconcileCore

/// Prints apply progress: each environment's plan (made under its lock), its steps
/// (`staging: gate health /health ok after 0.4 s (attempt 2)`) and its result, or JSON lines.
/// On a terminal, pull progress is one line redrawn in place: at each milestone, and byte counts at
/// most ten times a second. With `quiet`, only the result lines of environments that changed or
/// failed are printed (and warnings on stderr).
struct ApplyPrinter: DeployReporter {
    var output: ApplyOutput
    var quiet: Bool
    var context: CommandContext
    var colour: Bool
    /// Whether a progress line is on screen, and when it was last drawn.
    private let drawn = Locked((visible: false, at: Date.distantPast))

    init(output: ApplyOutput, quiet: Bool = false, context: CommandContext, colour: Bool = false) {
        self.output = output
        self.quiet = quiet
        self.context = context
        self.colour = colour && output == .text
    }

    func plan(_ plan: EnvironmentPlan) {
        guard output == .text, !quiet else { return }
        clearProgress()
        context.output.write(PlanRenderer(plans: [plan], colour: colour).environment(plan))
    }

    func pullProgress(environment: String, line: String, milestone: Bool) {
        guard output == .text, !quiet, let terminal = context.progress else { return }
        let now = Date()
        let draw = drawn.withLock { state in
            guard milestone || now.timeIntervalSince(state.at) >= 0.1 else { return false }
            state = (true, now)
            return true
        }
        if draw { terminal.write("\r\u{1B}[K\(environment): \(line)") }
    }

    /// Clears a progress line before the next line is printed.
    private func clearProgress() {
        let visible = drawn.withLock { state in
            defer { state = (false, .distantPast) }
            return state.visible
        }
        if visible, let terminal = context.progress { terminal.write("\r\u{1B}[K") }
    }

    func event(_ event: DeployEvent) {
        clearProgress()
        switch output {
        case .json: json(event)
        case .text:
            guard !quiet || !event.ok else {
                if !event.ok { context.warn(Self.line(event)) }
                return
            }
            event.ok ? context.say(Self.line(event)) : context.warn(Self.line(event))
        }
    }

    static func line(_ event: DeployEvent) -> String {
        let time = event.seconds.map { String(format: " (%.1f s)", $0) } ?? ""
        return "\(event.environment): \(event.step) \(event.message)\(time)"
    }

    func outcome(_ outcome: DeployOutcome, environment: String, seconds: Double) {
        let text: String
        switch outcome {
        case .unchanged:
            if quiet { return }
            text = "in sync, nothing to do"
        case .converged(let summary): text = "converged: \(summary)"
        case .refused(let reason): text = "refused: \(reason)"
        case .skipped(_, let reason): text = "skipped: \(reason)"
        case .interrupted(let reason): text = "interrupted: \(reason)"
        case .rolledBack(let failure, let restored): text = "deploy failed and was rolled back: \(failure). \(restored)"
        case .rollbackFailed(let failure, let state):
            text = "deploy failed and the rollback failed too: \(failure). State: \(state). A person must look."
        }
        // An interruption's code is the signal's, known only to the whole run.
        let code = { if case .interrupted = outcome { return "" } else { return " (exit \(outcome.exitCode))" } }()
        let event = DeployEvent(
            environment: environment, step: "result", message: "\(outcome.name)\(code): \(text)",
            seconds: seconds, ok: outcome.exitCode == 0)
        // In quiet mode a result is the one line an environment gets: on stdout, whatever it says.
        if quiet && output == .text {
            context.say(Self.line(event))
        } else {
            self.event(event)
        }
    }

    /// One closing line over every environment (text, not quiet).
    /// `notApplied`: environments a signal stopped before they began.
    func summary(_ results: [(environment: String, outcome: DeployOutcome)], notApplied: Int = 0) {
        guard output == .text, !quiet, results.count + notApplied > 1 else { return }
        var counts: [String: Int] = [:]
        for result in results { counts[result.outcome.name, default: 0] += 1 }
        let order = [
            "converged", "unchanged", "rolled-back", "rollback-failed", "refused", "skipped-known-bad",
            "skipped-approval", "declined",
            "interrupted",
        ]
        var parts = order.compactMap { name in counts[name].map { "\($0) \(name)" } }
        if notApplied > 0 { parts.append("\(notApplied) not applied") }
        context.say("Apply: " + parts.joined(separator: ", ") + ".")
    }

    private func json(_ event: DeployEvent) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(event) { context.output.write(String(decoding: data, as: UTF8.self) + "\n") }
    }
}
