import Foundation

/// The seed's replace, ordered so that the previous version survives every failure:
///
/// 1. create the new container beside the running one, under the candidate name (whatever the
///    engine refuses at create, such as more CPUs than the host has or a missing network, is found
///    before anything running is touched);
/// 2. rename the running container aside as the next backup;
/// 3. stop it (it holds the port);
/// 4. start the candidate and gate it (health, smoke, performance);
/// 5. rename the candidate to the active name: only a verified container ever holds that name;
/// 6. remove backups beyond `backups`.
///
/// Each step is written to the deploy's record before it is taken. Any failure before step 2
/// removes the candidate and leaves the running container exactly as it was; any later failure
/// removes the candidate and restores the newest verified backup. Nothing is ever removed by name.
public struct StopStartStrategy: ReplaceStrategy {
    /// Named points of a replace, for the crash-safety tests (`RECONCILE_TEST_ABORT_AT`).
    public enum Step: String, Sendable, CaseIterable {
        case afterCreate = "after-create"
        case afterRename = "after-rename"
        case afterStop = "after-stop"
        case duringGate = "during-gate"
        case afterGate = "after-gate"
        case duringRollback = "during-rollback"
    }

    public init() {}

    public func deploy(_ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, context: DeployContext)
        async -> DeployOutcome
    {
        let spec = desired.spec
        // Leftovers of an interrupted apply were removed under the lock (`Reconciler`).
        let leftovers = Set(plan.prune.filter(\.leftover).map(\.id))
        let mine = host.containers.filter { container in
            container.isManaged(service: spec.service, environment: spec.environment)
                && !leftovers.contains(container.id)
        }
        let current = plan.currentID.flatMap { id in mine.first { $0.id == id } }
        let proxy = host.containers.first { $0.isProxy(of: spec) }
        switch plan.action {
        case .inSync:
            await removeProxy(proxy, spec: spec, context: context)
            return await prune(spec, backups: mine.backups(of: spec), context: context, summary: "in sync")
        case .start:
            guard let current else { return .refused("no container to start") }
            await removeProxy(proxy, spec: spec, context: context)
            return await restart(
                desired, current: current, mine: mine, user: host.images[desired.imageKey]?.user, context: context)
        case .create, .replace:
            return await replace(desired, current: current, mine: mine, host: host, context: context)
        case .conflict:
            return .refused(plan.conflicts.joined(separator: " "))
        }
    }

    private func replace(
        _ desired: DesiredEnvironment, current: ContainerSnapshot?, mine: [ContainerSnapshot], host: HostState,
        context: DeployContext
    ) async -> DeployOutcome {
        let spec = desired.spec
        let engine = context.engine
        let recorder = context.recorder
        var backups = mine.backups(of: spec)

        var started = context.clock.now()
        let candidateID: String
        let folder: SecretFolder?
        do {
            folder = try ContainerCreation.writeSecretFiles(
                desired, to: context.secretFiles, container: spec.candidateName,
                user: host.images[desired.imageKey]?.user)
        } catch {
            return .refused("\(error); nothing was changed")
        }
        let creation = ContainerCreation(
            desired: desired, name: spec.candidateName, revision: context.revision, deployedAt: context.wallClock(),
            secretFolder: folder)
        do {
            candidateID = try await engine.createContainer(creation)
        } catch {
            if let folder { context.secretFiles?.remove(folder.path) }
            return .refused("\(error); nothing was changed")
        }
        recorder.step(.created) { $0.candidateID = candidateID }
        abortIfAsked(.afterCreate, context)
        context.say(
            spec, "create", "\(spec.candidateName) (\(candidateID.prefix(12))) from \(spec.image)", since: started)

        if let current {
            started = context.clock.now()
            let verified = context.unverifiedID != current.id
            let backupName = spec.nextBackupName(existing: host.containers.map(\.name), verified: verified)
            recorder.step(.renamed) { $0.backupName = backupName }
            do {
                try await engine.renameContainer(current.id, to: backupName)
            } catch {
                // Nothing but the candidate changed: remove it (by id) and leave the running one as it was.
                try? await context.remove(candidateID, labels: creation.labels)
                return .refused(
                    "cannot rename \(spec.containerName) aside to \(backupName): \(error); nothing was changed, "
                        + "\(current.shownImage) (\(current.shortID)) still serves")
            }
            abortIfAsked(.afterRename, context)
            context.say(spec, "backup", "\(spec.containerName) → \(backupName)", since: started)
            var backup = current
            backup.name = backupName
            backups.insert(backup, at: 0)
        }

        // Stop every container of this environment that still runs: it holds the port. So does
        // the proxy of an environment that used blue-green until now; it goes once the new
        // version serves, and starts again if the old one is restored.
        recorder.step(.stopped)
        let proxy = host.containers.first { $0.isProxy(of: spec) && $0.holdsPort }
        for container in mine.filter(\.holdsPort) + (proxy.map { [$0] } ?? []) {
            started = context.clock.now()
            do {
                try await engine.stopContainer(container.id, timeout: spec.stopTimeout)
            } catch EngineError.api(let status, _, _) where status == 404 {
                continue  // removed meanwhile (docker rm): it holds no port any more
            } catch {
                return await rollBack(
                    spec, failedID: candidateID, failure: "cannot stop \(container.name): \(error)", backups: backups,
                    context: context, failedLabels: creation.labels, proxyID: proxy?.id)
            }
            context.say(spec, "stop", backups.first { $0.id == container.id }?.name ?? container.name, since: started)
        }
        abortIfAsked(.afterStop, context)

        recorder.step(.gating) { $0.gatingID = candidateID }
        let startedAt = context.clock.now()
        do {
            try await engine.startContainer(candidateID)
        } catch {
            return await rollBack(
                spec, failedID: candidateID, failure: "\(error)", backups: backups, context: context,
                failedLabels: creation.labels, proxyID: proxy?.id)
        }
        context.say(spec, "start", spec.candidateName, since: startedAt)
        abortIfAsked(.duringGate, context)
        let verdict = await context.verifier.verify(
            spec, containerID: candidateID, startedAt: context.clock.now(), restartsBefore: 0)
        for line in verdict.lines { context.say(spec, "gate", line) }
        if let failure = verdict.failure {
            if !verdict.interfered { context.recorder.versionFailedItsChecks() }
            return await rollBack(
                spec, failedID: candidateID, failure: failure, backups: backups, context: context,
                failedLabels: creation.labels, proxyID: proxy?.id)
        }

        recorder.step(.verified)
        abortIfAsked(.afterGate, context)
        do {
            try await engine.renameContainer(candidateID, to: spec.containerName)
        } catch {
            // It passed its gate and serves: keep it serving rather than remove it for a name.
            let state = await describe(spec, context: context)
            return .rollbackFailed(
                failure: "the new version passed its gate but cannot take the name \(spec.containerName): \(error)",
                state: "it serves on port \(spec.port) as \(spec.candidateName) (\(candidateID.prefix(12))); remove or "
                    + "rename what holds \(spec.containerName), then run apply again. \(state)")
        }
        context.say(spec, "promote", "\(spec.candidateName) → \(spec.containerName)")
        await removeProxy(host.containers.first { $0.isProxy(of: spec) }, spec: spec, context: context)
        return await prune(
            spec, backups: backups, context: context, summary: "\(spec.image) serving on port \(spec.port)")
    }

    /// Starts (or unpauses, or only re-checks) the active container and gates it.
    private func restart(
        _ desired: DesiredEnvironment, current: ContainerSnapshot, mine: [ContainerSnapshot], user: String?,
        context: DeployContext
    ) async -> DeployOutcome {
        let backups = mine.backups(of: desired.spec)
        let keep = Failed.keep(current, existing: mine.map(\.name))
        let spec = desired.spec
        let engine = context.engine
        context.recorder.step(.gating) { $0.gatingID = current.id }
        // A backup started by hand holds the port: stop it first, as a replace does.
        for other in mine where other.id != current.id && other.holdsPort {
            try? await engine.stopContainer(other.id, timeout: spec.stopTimeout)
            context.say(spec, "stop", other.name)
        }
        // A container started here may have been restarted by its policy before: count from now.
        let restartsBefore = (try? await engine.inspectContainer(current.id))?.restartCount ?? 0
        let startedAt = context.clock.now()
        do {
            try ContainerCreation.restoreSecretFiles(desired, of: current, to: context.secretFiles, user: user)
            switch current.state {
            case .running where current.health == "unhealthy":
                try await engine.stopContainer(current.id, timeout: spec.stopTimeout)
                try await engine.startContainer(current.id)
                context.say(spec, "restart", "\(spec.containerName) (its healthcheck said unhealthy)", since: startedAt)
            case .running:
                context.say(spec, "check", "\(spec.containerName) was never verified; gating it now")
            case .paused:
                try await engine.unpauseContainer(current.id)
                context.say(spec, "unpause", spec.containerName, since: startedAt)
            default:
                try await engine.startContainer(current.id)
                context.say(spec, "start", spec.containerName, since: startedAt)
            }
        } catch {
            return await rollBack(
                spec, failedID: current.id, failure: "\(error)", backups: backups, context: context,
                failedLabels: current.labels, failed: keep)
        }
        abortIfAsked(.duringGate, context)
        let verdict = await context.verifier.verify(
            spec, containerID: current.id, startedAt: context.clock.now(), restartsBefore: restartsBefore)
        for line in verdict.lines { context.say(spec, "gate", line) }
        if let failure = verdict.failure {
            return await rollBack(
                spec, failedID: current.id, failure: failure, backups: backups, context: context,
                failedLabels: current.labels, failed: keep)
        }
        return await prune(
            spec, backups: backups, context: context, summary: "\(spec.image) serving on port \(spec.port)")
    }

    private func prune(_ spec: EnvironmentSpec, backups: [ContainerSnapshot], context: DeployContext, summary: String)
        async -> DeployOutcome
    {
        await context.prune(spec, backups: backups, summary: summary)
    }

    /// Removes the failed container (by id) and brings back the newest verified backup under the
    /// active name, health-checked.
    /// What becomes of the container that failed: a new one is removed; the environment's own
    /// active container (a start that failed) is kept, stopped, as an unverified backup.
    enum Failed {
        case remove
        case keep(ContainerSnapshot, existing: [String])
    }

    /// Takes the failed container out of the way and brings back the newest verified backup under
    /// the active name, health-checked; when it cannot be restored, the next one, then unverified ones.
    private func rollBack(
        _ spec: EnvironmentSpec, failedID: String, failure: String, backups: [ContainerSnapshot],
        context: DeployContext, failedLabels: [String: String] = [:], failed disposition: Failed = .remove,
        proxyID: String? = nil
    ) async -> DeployOutcome {
        let engine = context.engine
        let started = context.clock.now()
        context.recorder.step(.rollingBack)
        let failureText = await context.failed(spec, failedID, failure)
        do {
            switch disposition {
            case .remove:
                // No graceful stop for a container that failed its gate: a forced remove kills it at
                // once, where a stop would wait out its stop timeout (a crash-looping one ignores SIGTERM).
                try await context.remove(failedID, labels: failedLabels)
            case .keep(let container, let existing):
                let name = spec.nextBackupName(existing: existing, verified: false)
                try await engine.renameContainer(failedID, to: name)
                try? await engine.stopContainer(failedID, timeout: spec.stopTimeout)
                context.say(spec, "backup", "\(container.name) → \(name) (kept, stopped: it failed its gate)")
            }
        } catch {
            let state = await describe(spec, context: context)
            return .rollbackFailed(
                failure: failureText,
                state:
                    "the failed container \(failedID.prefix(12)) could not be taken out of the way (\(error)). \(state)"
            )
        }
        abortIfAsked(.duringRollback, context)
        // The blue-green proxy stopped for this deploy serves the restored version again.
        if let proxyID { try? await engine.startContainer(proxyID) }
        let others = backups.filter { $0.id != failedID }
        let ordered = others.filter { $0.isVerifiedBackup(of: spec) } + others.filter { !$0.isVerifiedBackup(of: spec) }
        guard !ordered.isEmpty else {
            return .rolledBack(
                failure: failureText, restored: "there was no earlier version to restore; nothing of it runs now")
        }
        var problems: [String] = []
        for backup in ordered {
            let note = backup.isVerifiedBackup(of: spec) ? "" : " (it never passed a gate: no verified backup is left)"
            if let problem = await restore(backup, spec: spec, context: context) {
                problems.append("\(backup.name) (\(backup.shortID)): \(problem)")
                context.say(spec, "rollback", "could not restore \(backup.name): \(problem)", ok: false)
                continue
            }
            context.say(
                spec, "rollback", "restored \(backup.shownImage) (\(backup.shortID)) as \(spec.containerName)\(note)",
                since: started)
            return .rolledBack(
                failure: failureText, restored: "\(backup.shownImage) (\(backup.shortID)) serves again\(note)")
        }
        let state = await describe(spec, context: context)
        return .rollbackFailed(
            failure: failureText,
            state: "no backup could be restored (\(problems.joined(separator: "; "))). \(state)")
    }

    /// Renames a backup to the active name, starts it and checks its health; on failure it steps
    /// aside again (stopped, under its backup name) and the reason is returned.
    private func restore(_ backup: ContainerSnapshot, spec: EnvironmentSpec, context: DeployContext) async -> String? {
        let engine = context.engine
        do {
            try await engine.renameContainer(backup.id, to: spec.containerName)
        } catch {
            return "\(error)"
        }
        var problem: String?
        do {
            let restartsBefore = (try? await engine.inspectContainer(backup.id))?.restartCount ?? 0
            if let current = try? await engine.inspectContainer(backup.id), current.state == .paused {
                try await engine.unpauseContainer(backup.id)
            } else {
                try await engine.startContainer(backup.id)
            }
            let verdict = await context.verifier.verify(
                spec.forRestore, containerID: backup.id, startedAt: context.clock.now(),
                restartsBefore: restartsBefore, healthOnly: true)
            problem = verdict.failure.map { "fails its check: \($0)" }
        } catch {
            problem = "\(error)"
        }
        if problem != nil {
            try? await engine.stopContainer(backup.id, timeout: spec.stopTimeout)
            try? await engine.renameContainer(backup.id, to: backup.name)
        }
        return problem
    }

    /// What is really there after a failed rollback: who holds the active name, the backups, and
    /// whether anything answers on the port.
    func describe(_ spec: EnvironmentSpec, context: DeployContext) async -> String {
        var parts: [String] = []
        if let containers = try? await context.engine.containers() {
            if let active = containers.first(where: { $0.name == spec.containerName }) {
                parts.append("\(spec.containerName) is \(active.shortID) (\(active.image)), \(active.state.rawValue)")
            } else {
                parts.append("no container is named \(spec.containerName)")
            }
            let backups = containers.backups(of: spec)
            parts.append(
                backups.isEmpty
                    ? "no backups are left"
                    : "backups: "
                        + backups.map { "\($0.name) (\($0.image), \($0.state.rawValue))" }.joined(separator: ", "))
        } else {
            parts.append("the engine cannot be asked what runs")
        }
        let answer = await context.verifier.probe.get(
            host: spec.probeHost, port: spec.port, path: spec.health.path, timeout: .seconds(1))
        if let status = answer.status {
            parts.append("port \(spec.port) answers GET \(spec.health.path) with \(status)")
        } else {
            parts.append("nothing answers on port \(spec.port) (\(answer.error ?? "no answer"))")
        }
        return parts.joined(separator: "; ")
    }

    /// Removes the blue-green proxy of an environment that uses stop-first now, and its folder.
    /// The network stays: backups made under blue-green are attached to it.
    private func removeProxy(_ proxy: ContainerSnapshot?, spec: EnvironmentSpec, context: DeployContext) async {
        guard let proxy else { return }
        do {
            try await context.engine.removeContainer(proxy.id, force: true)
            context.proxies?.remove(spec.proxyName)
            context.say(spec, "proxy", "removed \(proxy.name) (strategy is stop-first)")
        } catch {
            context.say(spec, "proxy", "could not remove \(proxy.name): \(error)", ok: false)
        }
    }

    private func abortIfAsked(_ step: Step, _ context: DeployContext) {
        if context.abortAt == step.rawValue { kill(getpid(), SIGKILL) }
    }
}

extension ContainerSnapshot {
    /// True while it holds its published ports: running, restarting or paused.
    public var holdsPort: Bool { [.running, .restarting, .paused].contains(state) }
}
