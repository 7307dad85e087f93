import ArgumentParser
import ReconcileCore

/// Output formats of `diff`.
enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

extension Reconcile {
    /// `reconcile diff`: what apply would change, per environment; changes nothing.
    struct Diff: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what apply would change on the engine, per environment (exit 0 in sync, 2 changes pending)."
        )

        @OptionGroup var paths: PathArguments

        @Option(help: "Output format: text, json (stdout only) or markdown (for a PR comment).")
        var format: PlanFormat = .text

        @Option(help: "The state directory whose fingerprint key compares secret values (never created by diff).")
        var stateDir: String?

        @OptionGroup var color: ColorOption

        func execute(_ context: CommandContext) async -> Int32 {
            do {
                let plans = try await Self.plans(paths.paths, stateDir: stateDir, context: context)
                let renderer = PlanRenderer(plans: plans, colour: format == .text && context.colour(color))
                switch format {
                case .text: context.output.write(renderer.text())
                case .markdown: context.output.write(renderer.markdown())
                case .json: context.output.write(try renderer.json() + "\n")
                }
                if plans.contains(where: { $0.action == .conflict }) { return ExitCodes.failure }
                return plans.contains(where: \.hasChanges) ? ExitCodes.changesPending : ExitCodes.success
            } catch {
                return report(error, context)
            }
        }

        /// Loads the files, observes the engine once, and plans each environment.
        static func plans(_ paths: [String], stateDir: String?, context: CommandContext) async throws
            -> [EnvironmentPlan]
        {
            let loaded = try EnvironmentLoader.load(paths)
            let key = Planning.existingKey(stateDir: stateDir, context: context)
            // Each engine the files name is looked at once; the plans keep the files' order.
            let groups = EngineGroups(loaded.specs)
            var plans: [Int: [EnvironmentPlan]] = [:]
            for (group, (target, members)) in zip(groups.targets, groups.members).enumerated() {
                plans[group] = try await context.withEngine(target) { engine in
                    try await Planning.make(
                        members.map { loaded.specs[$0] }, engine: engine, key: key, stateDir: stateDir,
                        context: context
                    ).plans
                }
            }
            return groups.inFileOrder(plans)
        }
    }
}
