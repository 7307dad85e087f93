import ArgumentParser
import ReconcileCore

extension Reconcile {
    /// `reconcile version`: the version and the commit the binary was built from.
    struct VersionCommand: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "version", abstract: "Show the version and the git commit it was built from.")

        func execute(_ context: CommandContext) async -> Int32 {
            context.say("reconcile \(Reconcile.version) (commit \(Reconcile.commit))")
            return ExitCodes.success
        }
    }
}

/// Paths to environment files or folders of them; `environments/` when none is given.
/// `--no-color`, for the commands that print plans.
struct ColorOption: ParsableArguments {
    @Flag(name: .customLong("no-color"), help: "No colour, even on a terminal (NO_COLOR=1 does the same).")
    var noColor = false
}

struct PathArguments: ParsableArguments {
    @Argument(help: "Environment files, or folders of *.yml files (default: environments/).")
    var paths: [String] = []
}
