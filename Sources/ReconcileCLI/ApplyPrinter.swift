import Foundation
import ReconcileCore

/// Prints apply progress: `staging: health /health ok after 0.4 s (attempt 2)`, or JSON lines.
/// On a terminal, pull progress is one line redrawn in place: at each milestone, and byte counts at
/// most ten times a second.
struct ApplyPrinter: Sendable {
    var output: ApplyOutput
    var context: CommandContext
    /// Whether a progress line is on screen, and when it was last drawn.
    private let drawn = Locked((visible: false, at: Date.distantPast))

    init(output: ApplyOutput, context: CommandContext) {
        self.output = output
        self.context = context
    }

    func progress(_ line: String, environment: String, milestone: Bool) {
        guard output == .text, let terminal = context.progress else { return }
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
            let time = event.seconds.map { String(format: " (%.1f s)", $0) } ?? ""
            let line = "\(event.environment): \(event.step) \(event.message)\(time)"
            event.ok ? context.say(line) : context.warn(line)
        }
    }

    func outcome(_ outcome: DeployOutcome, environment: String, seconds: Double) {
        let text: String
        switch outcome {
        case .unchanged: text = "in sync, nothing to do"
        case .converged(let summary): text = "converged: \(summary)"
        case .refused(let reason): text = "refused: \(reason)"
        case .rolledBack(let failure, let restored): text = "deploy failed and was rolled back: \(failure). \(restored)"
        case .rollbackFailed(let failure, let state):
            text = "deploy failed and the rollback failed too: \(failure). State: \(state). A person must look."
        }
        event(
            DeployEvent(
                environment: environment, step: "result",
                message: "\(Self.name(outcome)) (exit \(outcome.exitCode)): \(text)",
                seconds: seconds, ok: outcome.exitCode == 0))
    }

    private func json(_ event: DeployEvent) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(event) { context.output.write(String(decoding: data, as: UTF8.self) + "\n") }
    }

    static func name(_ outcome: DeployOutcome) -> String {
        switch outcome {
        case .unchanged: return "unchanged"
        case .converged: return "converged"
        case .refused: return "refused"
        case .rolledBack: return "rolled-back"
        case .rollbackFailed: return "rollback-failed"
        }
    }

    static func failure(_ outcome: DeployOutcome) -> String? {
        switch outcome {
        case .refused(let reason): return reason
        case .rolledBack(let failure, _), .rollbackFailed(let failure, _): return failure
        case .unchanged, .converged: return nil
        }
    }
}
