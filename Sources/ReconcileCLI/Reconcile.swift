import ArgumentParser
import CReconcileBuildInfo
import ReconcileCore

/// The `reconcile` command: keeps a Docker host's environments as their YAML files say.
public struct Reconcile: AsyncParsableCommand {
    public static let version = "0.1.0"
    public static var commit: String { String(cString: reconcile_build_commit()) }

    public static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Keep a Docker host's environments exactly as their YAML files say.",
        discussion: """
            Exit codes:
              0    success: valid, in sync or converged
              1    error before anything changed (bad input, engine down, conflict, lock)
              2    diff: changes pending (apply --detailed-exitcode: changes made)
              3    apply: a deploy failed and was rolled back; the old version serves
              4    apply: the rollback failed too; a person must look
              5    apply: some converged, others failed before any change
              6    apply: some skipped: that state failed before (--retry tries it)
              7    apply: some environments were skipped for approval
              64   usage: wrong flags, or no such file, folder or environment
              130  apply: stopped by SIGINT before the end (143: SIGTERM, 129: SIGHUP)
            """,
        version: "reconcile \(version) (commit \(commit))",
        subcommands: [
            Validate.self, Diff.self, Apply.self, Status.self, History.self, Rollback.self, Watch.self,
            VersionCommand.self,
        ]
    )

    public init() {}

    /// Parses `arguments` and runs the command against `context`; returns the exit code.
    /// The executable and the tests both come through here.
    public static func run(_ arguments: [String], context: CommandContext) async -> Int32 {
        do {
            let command = try parseAsRoot(arguments)
            if let command = command as? any ContextCommand {
                return await command.execute(context)
            }
            // Help and version requests come back as errors from parseAsRoot; anything else is a plain command.
            var plain = command
            try plain.run()
            return ExitCodes.success
        } catch {
            let code = exitCode(for: error).rawValue
            let message = fullMessage(for: error)
            if !message.isEmpty { (code == 0 ? context.output : context.errors).write(message + "\n") }
            return code == 0 ? ExitCodes.success : ExitCodes.usage
        }
    }
}

/// A command on one environment (history, rollback): a bare name (`staging`) is resolved to its
/// file first, as for apply.
protocol SingleEnvironmentCommand: ContextCommand {
    var file: String { get set }
    /// Runs with `file` resolved.
    func executeResolved(_ context: CommandContext) async -> Int32
}

extension SingleEnvironmentCommand {
    func execute(_ context: CommandContext) async -> Int32 {
        var command = self
        do {
            command.file = try EnvironmentLoader.single(file)
        } catch {
            return report(error, context)
        }
        return await command.executeResolved(context)
    }
}

/// A subcommand that runs against a `CommandContext` and returns its exit code.
protocol ContextCommand: AsyncParsableCommand {
    func execute(_ context: CommandContext) async -> Int32
}

extension ContextCommand {
    public func run() async throws {
        let code = await execute(.live())
        if code != 0 { throw ExitCode(code) }
    }

    /// Reports an error the way every command does: one line (or one per validation issue) on stderr.
    func report(_ error: Error, _ context: CommandContext) -> Int32 {
        switch error {
        case let failure as ValidationFailure:
            for issue in failure.issues { context.warn(issue.description) }
            let files = Set(failure.issues.map(\.file)).count
            context.warn(
                "\(failure.issues.count) problem\(failure.issues.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"); nothing was changed"
            )
        case let usage as UsageError:
            // A file or environment that is not there is a mistake in the command line (EX_USAGE).
            context.warn("reconcile: error: \(usage)")
            return usage.exitCode
        default:
            context.warn("reconcile: error: \(error)")
        }
        return ExitCodes.failure
    }
}
