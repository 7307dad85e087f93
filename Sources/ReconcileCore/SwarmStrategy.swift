/// Deploys a Swarm service (`platform: swarm`): creates it, or updates its spec and lets Swarm roll
/// the tasks (its update policy: parallelism, delay, order, monitor, failure action), waits with a
/// deadline of its own (Swarm never fails a stuck update by itself), then gates the service
/// through its published port (health, smoke, performance). When anything fails it rolls back
/// through Swarm (`rollback=previous`) and checks the previous spec serves again; a new service
/// that fails is removed, as nothing served before it. The failing tasks' errors and last log lines
/// are reported. With `secrets_mode: file` (the default on Swarm) each secret value is a Swarm
/// secret of its own, made before the service needs it and removed once no spec of the service uses it.
struct SwarmStrategy: ReplaceStrategy {
    /// How often tasks and the update's state are read while waiting.
    var poll: Duration = .milliseconds(500)

    func deploy(_ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, context: DeployContext) async
        -> DeployOutcome
    {
        let spec = desired.spec
        let engine = context.engine
        var request = ContainerCreation(desired: desired, revision: context.revision, deployedAt: context.wallClock())
        request.image = Self.serviceImage(desired)
        if let id = host.images[desired.imageKey]?.id { request.labels[Labels.serviceImageID] = id }
        if plan.action == .inSync || plan.action == .conflict {
            return .converged("\(spec.containerName) is in sync")
        }
        do {
            try await attachSecrets(desired, to: &request, context: context)
        } catch {
            await removeUnusedSecrets(spec, context: context)
            return .refused("\(error); nothing was changed")
        }
        let outcome = await deployService(desired, request: request, plan: plan, host: host, context: context)
        await removeUnusedSecrets(spec, context: context)
        return outcome
    }

    /// Creates or updates the service with `request`, waits for it, gates it, rolls it back.
    private func deployService(
        _ desired: DesiredEnvironment, request: ContainerCreation, plan: EnvironmentPlan, host: HostState,
        context: DeployContext
    ) async -> DeployOutcome {
        let spec = desired.spec
        let engine = context.engine
        let current = host.containers.first { $0.name == spec.containerName && $0.isService }
        switch plan.action {
        case .inSync, .conflict:
            return .converged("\(spec.containerName) is in sync")  // `deploy` returned already.
        case .create:
            let id: String
            do {
                id = try await engine.createService(request, swarm: spec.swarm)
            } catch {
                // The answer may be lost after the engine made it: then it is this deploy's service.
                guard let made = try? await engine.service(spec.containerName),
                    made.labels[Labels.fingerprint] == request.labels[Labels.fingerprint]
                else { return .refused("\(error); nothing was changed") }
                context.say(spec, "create", "no answer from the engine, but it made the service: \(error)", ok: false)
                id = made.id
            }
            context.recorder.step(.gating) { $0.gatingID = id }
            context.say(
                spec, "create", "service \(spec.containerName) (\(id.prefix(12))), \(spec.swarm.replicas) replicas")
            if let failure = await converge(spec, image: request.image, id: id, since: nil, context: context) {
                if !failure.interfered { context.recorder.versionFailedItsChecks() }
                try? await engine.removeService(id)
                context.say(spec, "remove", "service \(spec.containerName): nothing served before it", ok: false)
                return .rolledBack(failure: failure.reason, restored: "nothing ran before; the new service was removed")
            }
            return .converged("\(spec.image) serving on port \(spec.port), \(spec.swarm.replicas) replicas")
        case .replace, .start:
            guard let current, let before = try? await engine.service(current.id) else {
                return .refused("the service \(spec.containerName) is gone since the plan; nothing was changed")
            }
            var version = before.version
            // Start: no task runs (a secret removed by hand, a node gone): the same spec, its tasks
            // deployed again (`docker service update --force`), its secrets made again where gone.
            var swarm = spec.swarm
            if plan.action == .start { swarm.forceUpdate = before.forceUpdate + 1 }
            do {
                do {
                    try await engine.updateService(before.id, version: before.version, request, swarm: swarm)
                } catch {
                    // The answer may be lost after the engine updated it: the new spec is then live
                    // and must be gated (and rolled back), not called unchanged.
                    guard let after = try? await engine.service(before.id), after.version > before.version,
                        after.labels[Labels.fingerprint] == request.labels[Labels.fingerprint]
                    else { return .refused("\(error); nothing was changed") }
                    context.say(
                        spec, "update", "no answer from the engine, but it took the update: \(error)", ok: false)
                }
                version += 1
                context.say(
                    spec, "update",
                    plan.action == .start
                        ? "service \(spec.containerName): no task runs; its tasks deployed again"
                        : "service \(spec.containerName): \(spec.swarm.updateSummary)")
            }
            context.recorder.step(.gating) { $0.gatingID = before.id }
            guard
                let failure = await converge(
                    spec, image: request.image, id: before.id, since: version, context: context)
            else {
                return .converged("\(spec.image) serving on port \(spec.port), \(spec.swarm.replicas) replicas")
            }
            if !failure.interfered { context.recorder.versionFailedItsChecks() }
            context.recorder.step(.rollingBack)
            return await rollBack(spec, to: before, failure: failure.reason, context: context)
        }
    }

    /// The image the service names: the file's reference; when earlier bytes are pinned (a revision
    /// applied again, `rollback`, a hold), their registry digest, which every node can pull, else
    /// their id (present where it was built or loaded).
    static func serviceImage(_ desired: DesiredEnvironment) -> String {
        guard let pin = desired.pin else { return desired.spec.image.description }
        return pin.digest ?? pin.id
    }

    /// True when `task` runs `image` (tasks name it without the digest Swarm may pin).
    static func runs(_ image: String, _ task: TaskSnapshot) -> Bool {
        task.image == image || task.image == image.split(separator: "@").first.map(String.init)
    }

    /// Makes the Swarm secret of each secret value the service does not have yet, and mounts them all.
    func attachSecrets(_ desired: DesiredEnvironment, to request: inout ContainerCreation, context: DeployContext)
        async throws
    {
        let spec = desired.spec
        guard spec.secretsMode == .file, !spec.secrets.isEmpty else { return }
        let (versions, missing) = SwarmSecretVersion.of(desired)
        guard missing.isEmpty else {
            throw StateError(
                "no value for \(missing.joined(separator: ", ")) (set it in the environment or in secrets_file)")
        }
        let existing = try await context.engine.swarmSecrets(labeled: SwarmSecretVersion.labels(of: spec))
        for version in versions {
            let id: String
            if let made = existing.first(where: {
                $0.labels[Labels.secretName] == version.target
                    && $0.labels[Labels.secretVersion] == version.labels[Labels.secretVersion]
            }) {
                id = made.id
            } else {
                id = try await context.engine.createSwarmSecret(
                    name: version.name, value: version.value, labels: version.labels)
                context.say(spec, "secret", "created Swarm secret \(version.name) for \(version.target)")
            }
            request.swarmSecrets.append(SwarmSecretMount(id: id, name: version.name, target: version.target))
        }
    }

    /// Removes the environment's Swarm secrets that neither the service's spec nor its previous
    /// spec (which Swarm's rollback returns to) uses; all of them when the service is gone.
    func removeUnusedSecrets(_ spec: EnvironmentSpec, context: DeployContext) async {
        let engine = context.engine
        let used: Set<String>
        let secrets: [SwarmSecret]
        do {
            secrets = try await engine.swarmSecrets(labeled: SwarmSecretVersion.labels(of: spec))
            guard !secrets.isEmpty else { return }
            used = try await engine.service(spec.containerName)?.secretIDs ?? []
        } catch {
            return  // Not known what is used: nothing is removed.
        }
        for secret in secrets where !used.contains(secret.id) {
            do {
                try await engine.removeSwarmSecret(secret.id)
                context.say(spec, "secret", "removed Swarm secret \(secret.name): no spec of the service uses it")
            } catch {
                context.say(spec, "secret", "kept Swarm secret \(secret.name): \(error)", ok: false)
            }
        }
    }

    /// Why a Swarm deploy failed, and whether that was the version's doing.
    struct Failure {
        var reason: String
        /// The service was removed, or the engine stopped answering: not the version's failure.
        var interfered = false
    }

    /// The longest reconcile waits for Swarm, however many replicas: beyond it a person must look.
    static let longestWait: Duration = .seconds(1800)
    /// How long tasks may wait for a node (`no suitable node`) before the deploy fails.
    static let unschedulable: Duration = .seconds(30)

    /// Waits for the service to run its replicas (an update: for Swarm to finish it), then gates it;
    /// the failure, or nil when it serves.
    func converge(_ spec: EnvironmentSpec, image: String, id: String, since version: UInt64?, context: DeployContext)
        async -> Failure?
    {
        let engine = context.engine
        let started = context.clock.now()
        let bound = min(spec.swarm.updateBound(health: spec.health), Self.longestWait)
        var stuckSince: Duration?
        while true {
            if context.clock.now() - started > bound {
                return Failure(
                    reason: await explain(
                        "the service did not converge within \(Quantities.format(bound)) (Swarm does not give up on "
                            + "its own)", spec: spec, image: image, id: id, context: context))
            }
            let service: ServiceSnapshot?
            let tasks: [TaskSnapshot]
            do {
                service = try await engine.service(id)
                tasks = try await engine.tasks(ofService: id)
            } catch {
                return Failure(reason: "\(error)", interfered: true)
            }
            guard let service else {
                return Failure(
                    reason: "the service was removed during its deploy (docker service rm?)", interfered: true)
            }
            let state = service.updateState
            if version != nil, let state,
                ["paused", "rollback_started", "rollback_paused", "rollback_completed"].contains(state)
            {
                return Failure(
                    reason: await explain(
                        "Swarm stopped the update (\(state)\(service.updateMessage.map { ": \($0)" } ?? ""))",
                        spec: spec, image: image, id: id, context: context))
            }
            let mine = tasks.filter { Self.runs(image, $0) && $0.desiredState == "running" }
            let running = mine.filter(\.isRunning).count
            let updating = version != nil && state == "updating"
            if running >= spec.swarm.replicas && !updating { break }
            // Tasks no node can take (constraints nobody meets, ports taken) wait forever in Swarm.
            let waiting = mine.filter { $0.state == "pending" && ($0.error ?? "").contains("no suitable node") }
            if !waiting.isEmpty {
                let since = stuckSince ?? context.clock.now()
                stuckSince = since
                if context.clock.now() - since > Self.unschedulable {
                    return Failure(
                        reason: await explain(
                            "\(waiting.count) tasks found no node to run on for \(Quantities.format(Self.unschedulable)) "
                                + "(\(waiting[0].error ?? "")); check placement.constraints, the nodes and their ports",
                            spec: spec, image: image, id: id, context: context))
                }
            } else {
                stuckSince = nil
            }
            try? await context.clock.sleep(for: poll)
        }
        context.say(spec, "tasks", "\(spec.swarm.replicas) of \(spec.swarm.replicas) running", since: started)
        guard let failure = await gate(spec, image: image, id: id, context: context) else { return nil }
        return Failure(reason: await explain(failure, spec: spec, image: image, id: id, context: context))
    }

    /// Runs the gate through the published port; the failure, or nil when it passed. With
    /// `publish.mode: host` each task answers on its own node's port only: a task on the engine's
    /// own node is checked at the engine's address, one on another node at that node's swarm
    /// address. Through the routing mesh (ingress) the engine's address reaches them all.
    /// `image` picks the tasks (nil: those Swarm wants running, after its rollback).
    func gate(
        _ spec: EnvironmentSpec, image: String?, id: String, healthOnly: Bool = false, context: DeployContext
    ) async -> String? {
        var targets: [(name: String, target: ProbeTarget?)] = [("", nil)]
        if spec.swarm.publishMode == .host, let nodes = try? await context.engine.swarmNodes(),
            let tasks = try? await context.engine.tasks(ofService: id)
        {
            let running = Set(
                tasks.filter { task in
                    task.isRunning && task.desiredState == "running" && (image.map { Self.runs($0, task) } ?? true)
                }.map(\.node))
            let elsewhere = nodes.filter { running.contains($0.id) && !$0.isSelf }
            if !elsewhere.isEmpty {
                targets =
                    (nodes.contains { running.contains($0.id) && $0.isSelf }
                        ? [(name: nodes.first(where: \.isSelf)?.hostname ?? "", target: nil)] : [])
                    + elsewhere.map { node in
                        (name: node.hostname, target: node.address.map { ProbeTarget(host: $0, port: spec.port) })
                    }
            }
        }
        for (name, target) in targets {
            let verdict = await context.verifier.verify(
                spec, containerID: nil, startedAt: context.clock.now(), restartsBefore: 0, healthOnly: healthOnly,
                target: target)
            for line in verdict.lines {
                context.say(
                    spec, "gate", name.isEmpty ? line : "\(name): \(line)",
                    ok: verdict.failure == nil || line != verdict.lines.last)
            }
            if let failure = verdict.failure { return name.isEmpty ? failure : "on node \(name): \(failure)" }
        }
        return nil
    }

    /// Rolls the service back to its previous spec through Swarm and checks that it is the spec
    /// that ran before this deploy (`before`), that Swarm finished, that each restored task runs,
    /// and that they serve.
    func rollBack(_ spec: EnvironmentSpec, to before: ServiceSnapshot, failure: String, context: DeployContext) async
        -> DeployOutcome
    {
        let engine = context.engine
        let id = before.id
        do {
            guard let now = try await engine.service(id) else {
                return .rollbackFailed(
                    failure: failure, state: "the service was removed; nothing serves \(spec.containerName)")
            }
            if now.updateState != "rollback_completed" && now.updateState != "rollback_started" {
                try await engine.rollbackService(id, version: now.version)
            }
            context.say(spec, "rollback", "service \(spec.containerName) to its previous spec (Swarm's rollback)")
        } catch {
            return .rollbackFailed(failure: failure, state: "Swarm's rollback was refused: \(error)")
        }
        let started = context.clock.now()
        let bound = spec.swarm.updateBound(health: spec.forRestore.health)
        var seen: ServiceSnapshot?
        var running = 0
        while context.clock.now() - started < bound {
            seen = try? await engine.service(id)
            let tasks = (try? await engine.tasks(ofService: id)) ?? []
            // Swarm may call its rollback complete before each restored task runs (passes its healthcheck).
            running = tasks.filter { $0.isRunning && $0.desiredState == "running" && Self.runs(before.image, $0) }.count
            if seen?.updateState == "rollback_completed" && running >= spec.swarm.replicas { break }
            try? await context.clock.sleep(for: poll)
        }
        guard let seen, seen.updateState == "rollback_completed", running >= spec.swarm.replicas else {
            let state = seen?.updateState ?? "unknown"
            return .rollbackFailed(
                failure: failure,
                state: await explain(
                    "Swarm's rollback did not finish within \(Quantities.format(bound)) (update state \(state); "
                        + "\(running) of \(spec.swarm.replicas) tasks run \(before.image))",
                    spec: spec, image: before.image, id: id, context: context))
        }
        // Swarm goes back to the spec before its last update: after a change by hand during the
        // deploy, that is the hand's spec, not the one that ran before.
        if seen.image != before.image {
            return .rollbackFailed(
                failure: failure,
                state: "Swarm's rollback restored \(seen.image), not \(before.image) that ran before this deploy (the "
                    + "service was changed by hand during it); check it and apply again")
        }
        let restored = spec.forRestore
        if let again = await gate(restored, image: before.image, id: id, healthOnly: true, context: context) {
            return .rollbackFailed(
                failure: failure,
                state: await explain(
                    "the previous spec was restored by Swarm but does not pass its health check: \(again)",
                    spec: spec, image: before.image, id: id, context: context))
        }
        return .rolledBack(failure: failure, restored: "the previous spec serves again (Swarm's rollback)")
    }

    /// The failure with the failing tasks' errors and one's last log lines.
    func explain(_ failure: String, spec: EnvironmentSpec, image: String, id: String, context: DeployContext) async
        -> String
    {
        // This version's tasks only: the service's history holds earlier versions' failures too.
        let tasks = ((try? await context.engine.tasks(ofService: id)) ?? []).filter { Self.runs(image, $0) }
        let failing = tasks.filter {
            ["failed", "rejected", "complete"].contains($0.state) || ($0.error ?? "").isEmpty == false
        }
        var text = failure
        // Tasks that ended name the version's fault; a pending one's error often only follows from it.
        let ended = failing.filter { ["failed", "rejected", "complete"].contains($0.state) }
        let errors = Array(
            Set(
                (ended.isEmpty ? failing : ended).map { task in
                    "\(task.state): \(task.error ?? (task.state == "complete" ? "its container exited" : task.message))"
                })
        ).sorted()
        if !errors.isEmpty { text += "; failing tasks: " + errors.prefix(3).joined(separator: "; ") }
        // Swarm stops a task whose healthcheck fails; its container on this node still says so.
        for container in tasks.compactMap(\.containerID).prefix(3) {
            if let seen = try? await context.engine.inspectContainer(container), seen.health == "unhealthy" {
                text +=
                    "; its healthcheck failed ("
                    + (spec.healthcheckFromPolicy
                        ? "GET :\(spec.containerPort)\(spec.health.path) inside the task, from the file's health policy"
                        : "docker_healthcheck")
                    + ")"
                break
            }
        }
        // A task's container on this node has the log lines; on another node there are none to read.
        if let container = (failing + tasks).compactMap(\.containerID).first {
            return await context.failed(spec, container, text)
        }
        context.say(spec, "failed", text, ok: false)
        return text
    }
}
