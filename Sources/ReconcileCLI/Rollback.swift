import ArgumentParser
import Foundation
import ReconcileCore
import ReconcileSystem

extension Reconcile {
    /// `reconcile rollback`: re-apply an earlier revision of an environment file from git, health-gated
    /// as apply is, and hold the environment there until a new commit changes the file.
    struct Rollback: SingleEnvironmentCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-apply an earlier revision of an environment file from git, and hold it there.",
            discussion: """
                Without --to: the newest revision older than the live one whose spec differs and whose
                last apply here converged. The revision runs the image it ran then (by id, else by
                registry digest), not whatever its tag points at now. Until a new commit changes the
                file, a plain apply keeps the environment at that revision; --release lifts the hold.
                Exit codes as for apply.
                """)

        @Argument(help: "The environment file, or its name (`staging`).")
        var file: String

        @Option(help: "The revision to go back to (a sha, HEAD~2, a tag).")
        var to: String?

        @Flag(help: "Approve the change for environments with `approval: required`.")
        var approve = false

        @Flag(help: "Lift the hold a rollback left, so that apply applies the file as it is again.")
        var release = false

        @OptionGroup var deploy: DeployOptions

        @OptionGroup var color: ColorOption

        func validate() throws {
            if release && to != nil { throw ValidationError("--release and --to cannot be used together") }
        }

        func executeResolved(_ context: CommandContext) async -> Int32 {
            do {
                guard let spec = try EnvironmentLoader.load([file]).specs.first else {
                    throw UsageError("\(file): no environment in this file")
                }
                let store = try FileStateStore(
                    path: StateDirectory.path(deploy.stateDir, environment: context.environment))
                if release {
                    let held = try store.hold(spec.containerName)
                    try store.clearHold(spec.containerName)
                    context.say(
                        held.map {
                            "\(spec.environment): released the hold at \($0.revision.prefix(12)); apply applies \(file) as it is again"
                        }
                            ?? "\(spec.environment): not held; nothing to release")
                    return ExitCodes.success
                }
                let key = try store.fingerprintKey(create: true)
                return try await context.withEngine(spec.engine) { engine in
                    try await run(spec, engine: engine, store: store, key: key, context: context)
                }
            } catch {
                return report(error, context)
            }
        }

        private func run(
            _ current: EnvironmentSpec, engine: any ContainerEngine, store: FileStateStore, key: [UInt8]?,
            context: CommandContext
        ) async throws -> Int32 {
            let live = try await engine.inspectContainer(current.containerName)
                .flatMap { $0.isManaged(service: current.service, environment: current.environment) ? $0 : nil }
            let journal = try store.journal()
            let history = try await context.revisions.history(of: file, limit: 1000)
            let target = try await choose(current, live: live, history: history, journal: journal, context: context)
            let spec = try await HeldRevision.spec(of: file, at: target, context: context)
            guard spec.service == current.service, spec.environment == current.environment else {
                throw UsageError(
                    "\(file) at \(target.prefix(12)) describes \(spec.containerName), not \(current.containerName)")
            }
            var desired = Planning.desiredEnvironment(spec, key: key, context: context)
            desired.pin = HeldRevision.pin(for: target, environment: spec.environment, journal: journal)
            desired.revision = FileRevision(commit: target, dirty: false)
            let printer = ApplyPrinter(output: .text, context: context, colour: context.colour(color))
            let from = live?.labels[Labels.revision].map { " from \($0.prefix(12))" } ?? ""
            context.say("\(spec.environment): rolling back\(from) to \(target.prefix(12))")
            let reconciler = Apply.reconciler(engine: engine, store: store, printer: printer, context: context)
            let options = Reconciler.Options(
                approval: Apply.approval(approve, context: context),
                lockTimeout: deploy.timeout, retry: true)
            let result = await reconciler.reconcile(desired, options: options)
            printer.outcome(result.outcome, environment: spec.environment, seconds: result.seconds)
            guard result.outcome == .unchanged || result.outcome.exitCode == ExitCodes.success else {
                return result.outcome.exitCode
            }
            let running = try await engine.inspectContainer(spec.containerName)
            try store.saveHold(
                Hold(
                    container: spec.containerName, revision: target, imageID: desired.pin?.id ?? running?.imageID,
                    since: ContainerCreation.timestamp(context.now()),
                    from: try? await context.revisions.revision(of: file)))
            let newer = history.prefix { $0.sha != target }.map { String($0.sha.prefix(12)) }
            context.say(
                "\(spec.environment): held at \(target.prefix(12)): a plain apply keeps this revision until a new commit "
                    + "changes \(file); `reconcile rollback --release \(file)` lifts the hold now.")
            if !newer.isEmpty {
                context.say("To make it permanent in git: git revert --no-edit \(newer.joined(separator: " "))")
            }
            return result.outcome.exitCode
        }

        /// `--to`, else the newest revision older than the live one whose spec differs and whose
        /// last apply converged.
        private func choose(
            _ current: EnvironmentSpec, live: ContainerSnapshot?, history: [FileCommit], journal: [JournalEntry],
            context: CommandContext
        ) async throws -> String {
            if let to {
                guard let sha = try await context.revisions.resolve(to, for: file) else {
                    throw UsageError("--to \(to) names no commit in the repository of \(file)")
                }
                return sha
            }
            let liveRevision = live?.labels[Labels.revision]
            let liveFingerprint = live?.labels[Labels.fingerprint]
            let older = history.drop { $0.sha != liveRevision }.dropFirst()
            let candidates = older.isEmpty && liveRevision == nil ? history.dropFirst() : older
            for commit in candidates {
                let last = journal.last { $0.environment == current.environment && $0.revision == commit.sha }
                guard last?.result == "converged",
                    let spec = try? await HeldRevision.spec(of: file, at: commit.sha, context: context),
                    DesiredEnvironment(spec: spec).runtimeConfig.fingerprint != liveFingerprint
                else { continue }
                return commit.sha
            }
            throw UsageError(
                "no revision of \(file) older than the live one (\(liveRevision.map { String($0.prefix(12)) } ?? "unknown")) "
                    + "differs from it and converged here (per the journal); name one with --to")
        }
    }
}
