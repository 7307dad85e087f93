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
            discussion: """
                Exit codes: 0 converged or in sync (2 with --detailed-exitcode when something changed),
                1 error before anything changed, 3 failed and rolled back, 4 rollback failed, 5 some
                converged and others failed before any change, 6 some skipped because that desired state
                failed before (see --retry), 7 some skipped for approval, 64 usage,
                130/143 interrupted by SIGINT/SIGTERM before all environments were done.
                """
        )

        @OptionGroup var paths: PathArguments

        @Flag(help: "Approve changes to environments with `approval: required`.")
        var approve = false

        @Option(
            name: [.customLong("format"), .customLong("output")], help: "text, or json (one event per line on stdout).")
        var format: ApplyOutput = .text

        @Flag(name: .shortAndLong, help: "Print only environments that changed or failed, one line each.")
        var quiet = false

        @Flag(
            help: "Try again a desired state that failed and was rolled back before (otherwise it is skipped, exit 6).")
        var retry = false

        @Flag(help: "Exit 2 instead of 0 when something was changed and converged (as terraform's -detailed-exitcode).")
        var detailedExitcode = false

        @OptionGroup var deploy: DeployOptions

        @OptionGroup var color: ColorOption

        func execute(_ context: CommandContext) async -> Int32 {
            do {
                let loaded = try EnvironmentLoader.load(paths.paths)
                let store = try FileStateStore(
                    path: StateDirectory.path(deploy.stateDir, environment: context.environment))
                let key = try store.fingerprintKey(create: true)
                return try await context.withEngine { engine in
                    await run(loaded.specs, engine: engine, store: store, key: key, context: context)
                }
            } catch {
                return report(error, context)
            }
        }

        private func run(
            _ specs: [EnvironmentSpec], engine: any ContainerEngine, store: FileStateStore, key: [UInt8]?,
            context: CommandContext
        ) async -> Int32 {
            let printer = ApplyPrinter(output: format, quiet: quiet, context: context, colour: context.colour(color))
            let interruption = Interruption { context.warn("reconcile: \($0)") }
            interruption.install()
            defer { interruption.uninstall() }
            let reconciler = Self.reconciler(engine: engine, store: store, printer: printer, context: context)
            let approval = Self.approval(approve, context: context)
            var results: [(String, DeployOutcome)] = []
            var left = 0
            for (index, spec) in specs.enumerated() {
                if interruption.exitCode != nil {
                    let rest = specs[index...].map { "\($0.environment) (\($0.file))" }.joined(separator: ", ")
                    context.warn("reconcile: interrupted; not applied: \(rest)")
                    left = specs.count - index
                    break
                }
                interruption.working(on: spec.environment)
                let desired: DesiredEnvironment
                do {
                    let resolved = try await HeldRevision.desired(
                        spec, key: key, store: store, release: true, context: context)
                    desired = resolved.desired
                    if let note = resolved.note {
                        printer.event(DeployEvent(environment: spec.environment, step: "hold", message: note))
                    }
                } catch {
                    let outcome = DeployOutcome.refused("\(error); nothing was changed")
                    printer.outcome(outcome, environment: spec.environment, seconds: 0)
                    results.append((spec.environment, outcome))
                    continue
                }
                let options = Reconciler.Options(
                    approval: approval, lockTimeout: deploy.timeout,
                    retry: retry, cancelled: { interruption.exitCode != nil })
                let result = await reconciler.reconcile(desired, options: options)
                printer.outcome(result.outcome, environment: spec.environment, seconds: result.seconds)
                results.append((spec.environment, result.outcome))
            }
            printer.summary(results, notApplied: left)
            // A signal that came during the last environment's deploy let it finish: its outcome is the answer.
            let stopped =
                left > 0 || results.contains { if case .interrupted = $0.1 { return true } else { return false } }
            return ExitCodes.apply(
                results.map(\.1), interruptedBy: stopped ? interruption.caughtSignal : nil, detailed: detailedExitcode)
        }

        /// The live reconciler for one run: the real probe, clock, git, secret files and lock identity.
        static func reconciler(
            engine: any ContainerEngine, store: any StateStore, printer: any DeployReporter, context: CommandContext
        ) -> Reconciler {
            var reconciler = Reconciler(
                engine: engine, probe: HTTPHealthProbe(), clock: SystemClock(), wallClock: context.now, state: store,
                identity: context.identity, hostPorts: context.hostPorts, reporter: printer,
                abortAt: context.environment["RECONCILE_TEST_ABORT_AT"])
            reconciler.revisions = context.revisions
            reconciler.secretFiles = TmpfsSecretFiles(
                root: TmpfsSecretFiles.defaultRoot(environment: context.environment))
            reconciler.proxies = ProxyFolders(stateDirectory: store.location)
            reconciler.notifier = WebhookNotifier(warn: { context.warn("reconcile: \($0)") })
            reconciler.variables = context.environment
            return reconciler
        }

        /// `--approve`, else a person at a terminal, else nobody.
        static func approval(_ approve: Bool, context: CommandContext) -> Reconciler.ApprovalMode {
            if approve { return .approved }
            guard context.ask != nil else { return .none }
            return .ask { question in Prompt.answer(question, context: context) }
        }
    }
}
