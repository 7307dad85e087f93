import Foundation

/// The seed's replace: rename the running container aside as a backup and stop it, create and
/// start the new one under the active name, gate it; on any failure remove the new one and bring
/// the newest backup back under the active name. On success, backups beyond `backups` are removed.
public struct StopStartStrategy: ReplaceStrategy {
    /// Named points of a replace, for the crash-safety tests (`RECONCILE_TEST_ABORT_AT`).
    public enum Step: String, Sendable, CaseIterable {
        case afterRename = "after-rename"
        case afterStop = "after-stop"
        case afterCreate = "after-create"
        case duringGate = "during-gate"
        case duringRollback = "during-rollback"
    }

    public init() {}

    public func deploy(
        _ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, revision: String?,
        context: DeployContext
    ) async -> DeployOutcome {
        let spec = desired.spec
        let engine = context.engine
        let say = { (step: String, message: String, since: Duration?) in
            context.report(
                DeployEvent(
                    environment: spec.environment, step: step, message: message,
                    seconds: since.map { (context.clock.now() - $0).seconds }))
        }
        let mine = host.containers.filter { $0.isManaged(service: spec.service, environment: spec.environment) }
        var backups = mine.backups(of: spec)

        // Leftovers of an interrupted apply go first; they are ours and hold nothing we need.
        for item in plan.prune where item.reason.hasPrefix("left over") {
            try? await engine.removeContainer(item.id, force: true)
            say("clean", "removed \(item.name), left over from an interrupted apply", nil)
        }

        var newID: String
        // A container created here has never restarted; an existing one may have.
        var restartsBefore = 0
        switch plan.action {
        case .inSync:
            return await prune(spec, backups: backups, context: context, summary: "in sync")
        case .start:
            guard let id = plan.currentID else { return .refused("no container to start") }
            newID = id
            restartsBefore = (try? await engine.inspectContainer(id))?.restartCount ?? 0
        case .create, .replace:
            do {
                if let current = plan.currentID.flatMap({ id in mine.first { $0.id == id } }) {
                    let started = context.clock.now()
                    let backupName = Self.backupName(spec, existing: mine.map(\.name), at: context.wallClock())
                    try await engine.renameContainer(current.id, to: backupName)
                    abortIfAsked(.afterRename, context)
                    say("backup", "\(spec.containerName) → \(backupName)", started)
                    var backup = current
                    backup.name = backupName
                    backups.insert(backup, at: 0)
                }
                // Stop every container of this environment that still runs (it holds the port).
                for container in mine where container.state == .running || container.state == .restarting {
                    let started = context.clock.now()
                    try await engine.stopContainer(container.id, timeout: spec.stopTimeout)
                    say("stop", "\(backups.first { $0.id == container.id }?.name ?? container.name)", started)
                }
                abortIfAsked(.afterStop, context)
            } catch {
                return await rollBack(spec, failedID: nil, failure: "\(error)", backups: backups, context: context)
            }
            let started = context.clock.now()
            do {
                let creation = ContainerCreation(desired: desired, revision: revision, deployedAt: context.wallClock())
                newID = try await engine.createContainer(creation)
                abortIfAsked(.afterCreate, context)
                say("create", "\(spec.containerName) (\(newID.prefix(12))) from \(spec.image)", started)
            } catch {
                return await rollBack(spec, failedID: nil, failure: "\(error)", backups: backups, context: context)
            }
        case .conflict:
            return .refused(plan.conflicts.joined(separator: " "))
        }

        let startedAt = context.clock.now()
        do {
            try await engine.startContainer(newID)
            say("start", spec.containerName, startedAt)
        } catch {
            return await rollBack(spec, failedID: newID, failure: "\(error)", backups: backups, context: context)
        }
        context.markUnverified(newID)
        abortIfAsked(.duringGate, context)
        let verdict = await context.verifier.verify(
            spec, containerID: newID, startedAt: startedAt, restartsBefore: restartsBefore)
        defer { context.markUnverified(nil) }
        for line in verdict.lines { say("gate", line, nil) }
        if let failure = verdict.failure {
            return await rollBack(spec, failedID: newID, failure: failure, backups: backups, context: context)
        }
        return await prune(
            spec, backups: backups, context: context, summary: "\(spec.image) serving on port \(spec.port)")
    }

    private func prune(_ spec: EnvironmentSpec, backups: [ContainerSnapshot], context: DeployContext, summary: String)
        async -> DeployOutcome
    {
        for backup in backups.dropFirst(spec.backups) {
            do {
                try await context.engine.removeContainer(backup.id, force: true)
                context.report(
                    DeployEvent(
                        environment: spec.environment, step: "prune", message: "removed old backup \(backup.name)"))
            } catch {
                context.report(
                    DeployEvent(
                        environment: spec.environment, step: "prune",
                        message: "could not remove \(backup.name): \(error)",
                        ok: false))
            }
        }
        return .converged(summary)
    }

    private func rollBack(
        _ spec: EnvironmentSpec, failedID: String?, failure: String, backups: [ContainerSnapshot],
        context: DeployContext
    ) async -> DeployOutcome {
        let engine = context.engine
        let started = context.clock.now()
        context.report(DeployEvent(environment: spec.environment, step: "failed", message: failure, ok: false))
        var failureText = failure
        if let failedID {
            if let logs = try? await engine.logs(failedID, tail: 10), !logs.isEmpty {
                let lines = logs.split(separator: "\n").suffix(5).joined(separator: " | ")
                failureText += "; last log lines: \(lines)"
                context.report(DeployEvent(environment: spec.environment, step: "logs", message: lines, ok: false))
            }
            // No graceful stop for a container that failed its gate: a forced remove kills it at once,
            // where a stop would wait out its stop timeout first (a crash-looping one ignores SIGTERM).
            do {
                try await engine.removeContainer(failedID, force: true)
            } catch {
                return .rollbackFailed(
                    failure: failureText,
                    state:
                        "the failed container \(failedID.prefix(12)) could not be removed (\(error)); no backup was restored"
                )
            }
        } else if let stray = try? await engine.inspectContainer(spec.containerName),
            stray.isManaged(service: spec.service, environment: spec.environment), !stray.isBackup(of: spec),
            !backups.contains(where: { $0.id == stray.id })
        {
            try? await engine.removeContainer(stray.id, force: true)
        }
        abortIfAsked(.duringRollback, context)
        guard let backup = backups.first else {
            return .rolledBack(failure: failureText, restored: "nothing ran before this deploy; nothing runs now")
        }
        do {
            try await engine.renameContainer(backup.id, to: spec.containerName)
            let restartsBefore = (try? await engine.inspectContainer(backup.id))?.restartCount ?? 0
            let startedAt = context.clock.now()
            try await engine.startContainer(backup.id)
            let verdict = await context.verifier.verify(
                spec, containerID: backup.id, startedAt: startedAt, restartsBefore: restartsBefore, healthOnly: true)
            guard verdict.failure == nil else {
                return .rollbackFailed(
                    failure: failureText,
                    state:
                        "backup \(backup.shortID) (\(backup.image)) runs again as \(spec.containerName) but fails its check: \(verdict.failure ?? "")"
                )
            }
            context.report(
                DeployEvent(
                    environment: spec.environment, step: "rollback",
                    message: "restored \(backup.image) (\(backup.shortID)) as \(spec.containerName)",
                    seconds: (context.clock.now() - started).seconds))
            return .rolledBack(failure: failureText, restored: "\(backup.image) (\(backup.shortID)) serves again")
        } catch {
            return .rollbackFailed(
                failure: failureText,
                state:
                    "could not restore backup \(backup.name) (\(backup.shortID)): \(error); nothing serves on port \(spec.port)"
            )
        }
    }

    private func abortIfAsked(_ step: Step, _ context: DeployContext) {
        if context.abortAt == step.rawValue { kill(getpid(), SIGKILL) }
    }

    /// `<name>-backup-<UTC time>`, unique among `existing`.
    static func backupName(_ spec: EnvironmentSpec, existing: [String], at date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = "\(spec.containerName)-backup-\(formatter.string(from: date))"
        var name = base
        var counter = 2
        while existing.contains(name) {
            name = "\(base)-\(counter)"
            counter += 1
        }
        return name
    }
}

extension ContainerSnapshot {
    /// True for a backup of this environment: reconcile keeps them under `<name>-backup-…`.
    public func isBackup(of spec: EnvironmentSpec) -> Bool {
        isManaged(service: spec.service, environment: spec.environment)
            && name.hasPrefix(spec.containerName + "-backup-")
    }
}

extension Sequence where Element == ContainerSnapshot {
    /// This environment's backups, newest first (their names end in a UTC time).
    public func backups(of spec: EnvironmentSpec) -> [ContainerSnapshot] {
        filter { $0.isBackup(of: spec) }.sorted { $0.name > $1.name }
    }
}
