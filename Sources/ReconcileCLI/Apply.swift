import ArgumentParser
import Foundation
import ReconcileCore
import ReconcileSystem

/// Output of `apply`: lines for people, or one JSON event per line.
enum ApplyOutput: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension Reconcile {
    /// `reconcile apply`: converge each environment, health-gated, rolling back on failure.
    struct Apply: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Converge environments: back up, start, health-gate, smoke-test; roll back on failure.",
            discussion:
                "Exit codes: 0 converged, 1 error before anything changed, 3 failed and rolled back, 4 rollback failed."
        )

        @OptionGroup var paths: PathArguments

        @Flag(help: "Approve changes to environments with `approval: required`.")
        var approve = false

        @Option(help: "text, or json (one event per line on stdout).")
        var output: ApplyOutput = .text

        @Option(
            help:
                "Where the journal and locks live (default: RECONCILE_STATE_DIR, /var/lib/reconcile as root, else $XDG_STATE_HOME/reconcile)."
        )
        var stateDir: String?

        @Option(help: "How long to wait for another apply of the same environment, e.g. 2m.")
        var lockTimeout: String = "5m"

        func validate() throws {
            guard Quantities.duration(lockTimeout) != nil else {
                throw ValidationError("--lock-timeout expects a duration like 30s or 5m, got \"\(lockTimeout)\"")
            }
        }

        func execute(_ context: CommandContext) async -> Int32 {
            do {
                let loaded = try EnvironmentLoader.load(paths.paths)
                let directory = try StateDirectory.resolve(stateDir, environment: context.environment)
                return try await context.withEngine { engine in
                    try await run(loaded.specs, engine: engine, stateDirectory: directory, context: context)
                }
            } catch {
                return report(error, context)
            }
        }

        private func run(
            _ specs: [EnvironmentSpec], engine: any ContainerEngine, stateDirectory: String, context: CommandContext
        ) async throws -> Int32 {
            let planning = try await Planning.make(specs, engine: engine, context: context)
            let (desired, plans) = (planning.desired, planning.plans)
            let printer = ApplyPrinter(output: output, context: context)
            if output == .text { context.output.write(PlanRenderer(plans: plans).text()) }

            let unapproved = plans.filter { $0.approvalRequired && $0.hasChanges && $0.action != .conflict }
            if !approve && !unapproved.isEmpty {
                let names = unapproved.map(\.environment).joined(separator: ", ")
                if !Prompt.confirm("Apply the changes above to \(names)? [y/N] ", context: context) {
                    context.warn(
                        "reconcile: error: \(names) require\(unapproved.count == 1 ? "s" : "") approval; nothing was changed. Re-run with --approve, or answer yes on a terminal."
                    )
                    return ExitCodes.failure
                }
            }

            var worst: Int32 = ExitCodes.success
            let abortAt = context.environment["RECONCILE_TEST_ABORT_AT"]
            let interruption = Interruption { context.warn("reconcile: \($0)") }
            interruption.install()
            defer { interruption.uninstall() }
            for index in desired.indices {
                if let code = interruption.exitCode {
                    let rest = desired[index...].map(\.spec.environment).joined(separator: ", ")
                    context.warn("reconcile: interrupted; not applied: \(rest)")
                    return code
                }
                interruption.working(on: desired[index].spec.environment)
                let code = try await converge(
                    desired[index], engine: engine, stateDirectory: stateDirectory, abortAt: abortAt, printer: printer,
                    context: context)
                worst = Self.worse(worst, code)
            }
            return interruption.exitCode ?? worst
        }

        /// Applies one environment under its lock, re-planning once the lock is held.
        private func converge(
            _ desired: DesiredEnvironment, engine: any ContainerEngine, stateDirectory: String, abortAt: String?,
            printer: ApplyPrinter, context: CommandContext
        ) async throws -> Int32 {
            let spec = desired.spec
            let lock = FileLock(path: "\(stateDirectory)/\(spec.containerName).lock")
            try await lock.acquire(timeout: Quantities.duration(lockTimeout) ?? .seconds(300))
            defer { lock.release() }
            let clock = SystemClock()
            let started = clock.now()
            let host = try await Observer(engine: engine, hostPorts: context.hostPorts).observe([spec])
            let plan = Differ.plan(desired, host: host)
            let current = plan.currentID.flatMap { id in host.containers.first { $0.id == id } }
            let marker = "\(stateDirectory)/\(spec.containerName).unverified"
            let unverified = (try? String(contentsOfFile: marker, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let markUnverified: @Sendable (String?) -> Void = { id in
                if let id {
                    try? id.write(toFile: marker, atomically: true, encoding: .utf8)
                } else {
                    try? FileManager.default.removeItem(atPath: marker)
                }
            }
            var deployContext = DeployContext(
                engine: engine, probe: HTTPHealthProbe(), clock: clock, report: { printer.event($0) },
                wallClock: context.now, abortAt: abortAt, unverifiedID: unverified, markUnverified: markUnverified)
            deployContext.pullProgress = { printer.progress($1, environment: $0, milestone: $2) }
            let revision = GitRevision.head(containing: spec.file)
            let outcome = await Deployer().apply(
                desired, plan: plan, host: host, revision: revision, context: deployContext)
            printer.outcome(outcome, environment: spec.environment, seconds: (clock.now() - started).seconds)
            if outcome != .unchanged {
                let newImage = try? await engine.inspectImage(spec.image.description)
                let entry = JournalEntry(
                    time: ContainerCreation.timestamp(context.now()), environment: spec.environment, file: spec.file,
                    revision: revision, oldImage: current?.image, oldImageID: current?.imageID,
                    newImage: spec.image.description, newImageID: newImage?.id, action: plan.action.rawValue,
                    result: ApplyPrinter.name(outcome), exitCode: outcome.exitCode,
                    seconds: ((clock.now() - started).seconds * 1000).rounded() / 1000,
                    failedCheck: ApplyPrinter.failure(outcome))
                if let problem = Journal(directory: stateDirectory).append(entry) {
                    context.warn("reconcile: warning: \(problem) (the deploy itself is not affected)")
                }
            }
            return outcome.exitCode
        }

        /// The exit code that says more: 4 over 3 over 1 over 0.
        static func worse(_ lhs: Int32, _ rhs: Int32) -> Int32 {
            let rank: [Int32: Int] = [0: 0, 1: 1, 3: 2, 4: 3]
            return (rank[lhs] ?? 1) >= (rank[rhs] ?? 1) ? lhs : rhs
        }
    }
}
