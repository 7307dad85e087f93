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

        @Option(help: "How many engines are deployed to at once when the files name several (engine:).")
        var parallel: Int = 4

        func validate() throws {
            guard (1...64).contains(parallel) else {
                throw ValidationError("--parallel expects a number from 1 to 64, got \(parallel)")
            }
        }

        func execute(_ context: CommandContext) async -> Int32 {
            do {
                let loaded = try EnvironmentLoader.load(paths.paths)
                let store = try FileStateStore(
                    path: StateDirectory.path(deploy.stateDir, environment: context.environment))
                let key = try store.fingerprintKey(create: true)
                let groups = EngineGroups(loaded.specs)
                if groups.count == 1 {
                    // One engine: one that cannot be reached is the one error of the run (exit 1).
                    return try await context.withEngine(groups.targets[0]) { engine in
                        await run(groups, engines: [0: engine], store: store, key: key, context: context)
                    }
                }
                return await run(groups, engines: [:], store: store, key: key, context: context)
            } catch {
                return report(error, context)
            }
        }

        /// Applies every group, `parallel` engines at once, each engine's environments in the
        /// files' order; `engines` holds the groups connected already (the others connect here).
        private func run(
            _ groups: EngineGroups, engines: [Int: any ContainerEngine], store: FileStateStore, key: [UInt8]?,
            context: CommandContext
        ) async -> Int32 {
            let printer = ApplyPrinter(output: format, quiet: quiet, context: context, colour: context.colour(color))
            let interruption = Interruption { context.warn("reconcile: \($0)") }
            interruption.install()
            defer { interruption.uninstall() }
            let approval = Self.approval(approve, context: context)
            // A person at a terminal answers one question at a time: one engine at a time then.
            let width: Int
            if case .ask = approval { width = 1 } else { width = parallel }
            let run = GroupRun(
                store: store, key: key, context: context, printer: printer, interruption: interruption,
                approval: approval, lockTimeout: deploy.timeout, retry: retry)
            var outcomes: [Int: DeployOutcome] = [:]
            var left = 0
            await withTaskGroup(of: GroupRun.Done.self) { tasks in
                var next = 0
                func startNext() {
                    guard next < groups.count else { return }
                    let index = next
                    next += 1
                    tasks.addTask { await run.apply(groups, index, engine: engines[index]) }
                }
                for _ in 0..<min(width, groups.count) { startNext() }
                for await done in tasks {
                    outcomes.merge(done.outcomes) { first, _ in first }
                    left += done.notApplied
                    startNext()
                }
            }
            let results = groups.specs.indices.compactMap { index in
                outcomes[index].map { (groups.specs[index].environment, $0) }
            }
            printer.summary(results, notApplied: left)
            // A signal that came during the last environment's deploy let it finish: its outcome is the answer.
            let stopped =
                left > 0 || results.contains { if case .interrupted = $0.1 { return true } else { return false } }
            return ExitCodes.apply(
                results.map(\.1), interruptedBy: stopped ? interruption.caughtSignal : nil, detailed: detailedExitcode)
        }

        /// One engine's share of a run.
        struct GroupRun: Sendable {
            struct Done: Sendable {
                var outcomes: [Int: DeployOutcome] = [:]
                var notApplied = 0
            }

            let store: FileStateStore
            let key: [UInt8]?
            let context: CommandContext
            let printer: ApplyPrinter
            let interruption: Interruption
            let approval: Reconciler.ApprovalMode
            let lockTimeout: Duration
            let retry: Bool

            /// Connects (unless `engine` is given) and applies the group's environments in order; an
            /// engine that cannot be reached refuses its environments and no others.
            func apply(_ groups: EngineGroups, _ group: Int, engine given: (any ContainerEngine)?) async -> Done {
                var done = Done()
                let members = groups.members[group]
                let engine: any ContainerEngine
                if let given {
                    engine = given
                } else {
                    do {
                        engine = try await context.connectTo(groups.targets[group])
                    } catch {
                        for index in members {
                            let outcome = DeployOutcome.refused("\(error); nothing was changed")
                            printer.outcome(outcome, environment: groups.specs[index].environment, seconds: 0)
                            done.outcomes[index] = outcome
                        }
                        return done
                    }
                }
                let reconciler = Apply.reconciler(engine: engine, store: store, printer: printer, context: context)
                for (position, index) in members.enumerated() {
                    let spec = groups.specs[index]
                    if interruption.exitCode != nil {
                        let rest = members[position...].map {
                            "\(groups.specs[$0].environment) (\(groups.specs[$0].file))"
                        }
                        context.warn("reconcile: interrupted; not applied: \(rest.joined(separator: ", "))")
                        done.notApplied = members.count - position
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
                        done.outcomes[index] = outcome
                        continue
                    }
                    let reconcileOptions = Reconciler.Options(
                        approval: approval, lockTimeout: lockTimeout, retry: retry,
                        cancelled: { interruption.exitCode != nil })
                    let result = await reconciler.reconcile(desired, options: reconcileOptions)
                    printer.outcome(result.outcome, environment: spec.environment, seconds: result.seconds)
                    done.outcomes[index] = result.outcome
                }
                if given == nil { await engine.shutdown() }
                return done
            }
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

/// A run's environments grouped by the engine each names (`engine:`), in the files' order: the
/// groups in the order their first environment comes, each group's environments in file order.
struct EngineGroups: Sendable {
    let specs: [EnvironmentSpec]
    private(set) var targets: [EngineTarget?] = []
    /// Per group, the indexes into `specs`.
    private(set) var members: [[Int]] = []

    init(_ specs: [EnvironmentSpec]) {
        self.specs = specs
        for (index, spec) in specs.enumerated() {
            if let group = targets.firstIndex(of: spec.engine) {
                members[group].append(index)
            } else {
                targets.append(spec.engine)
                members.append([index])
            }
        }
        if targets.isEmpty {
            targets = [nil]
            members = [[]]
        }
    }

    var count: Int { targets.count }

    /// Results per group (each in its members' order) put back in the files' order; a group left
    /// out (its engine could not be reached) leaves its environments out.
    func inFileOrder<T>(_ perGroup: [Int: [T]]) -> [T] {
        var byIndex: [Int: T] = [:]
        for (group, results) in perGroup {
            for (index, result) in zip(members[group], results) { byIndex[index] = result }
        }
        return specs.indices.compactMap { byIndex[$0] }
    }
}
