import Foundation

/// Start-first behind the environment's managed HAProxy, which owns the port:
///
/// 1. make sure the network and the proxy exist and run (a missing or stopped proxy comes back
///    before anything else changes);
/// 2. create and start the new version beside the old one, on the network only, and gate it at
///    its own address (health from its start, smoke, performance). A failure removes it: the
///    proxy never sent it a request and the old version never stopped;
/// 3. rename the old version to the next backup and the new one to the active name (the proxy's
///    `live` server follows the name through Docker's DNS, so a restart of the proxy routes to it);
/// 4. switch: the proxy's `next` server takes the new version's address and new requests, `live`
///    stops taking new ones; one check through the public port, and a switch back on failure;
/// 5. drain: wait until the old version has no requests in flight, at most `drain_timeout`;
/// 6. settle: `live` points at the new version again and `next` is disabled;
/// 7. stop the old version (kept as a backup) and prune backups as stop-first does.
///
/// Moving from stop-first, the old version publishes the port itself: the proxy is created but
/// starts only once the old version has stopped, which costs about a second without service.
public struct BlueGreenStrategy: ReplaceStrategy {
    /// Named points of a deploy, for the crash-safety tests (`RECONCILE_TEST_ABORT_AT`).
    public enum Step: String, Sendable, CaseIterable {
        case afterCreate = "after-create"
        case duringGate = "during-gate"
        case afterGate = "after-gate"
        case afterRename = "after-rename"
        case afterPromote = "after-promote"
        case afterSwitch = "after-switch"
        case duringDrain = "during-drain"
        case afterSettle = "after-settle"
    }

    public init() {}

    public func deploy(_ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, context: DeployContext)
        async -> DeployOutcome
    {
        let spec = desired.spec
        guard let proxies = context.proxies else {
            return .refused("blue-green needs a state directory for the proxy's configuration; none is set up")
        }
        let leftovers = Set(plan.prune.filter(\.leftover).map(\.id))
        let mine = host.containers.filter { container in
            container.isManaged(service: spec.service, environment: spec.environment)
                && !leftovers.contains(container.id)
        }
        let current = plan.currentID.flatMap { id in mine.first { $0.id == id } }
        let run = Run(spec: spec, context: context, proxies: proxies)
        switch plan.action {
        case .conflict:
            return .refused(plan.conflicts.joined(separator: " "))
        case .inSync:
            if let refusal = await run.ensureProxy(host: host, start: true) { return refusal }
            if let current, current.state == .running, plan.proxy != nil || host.routing[spec.proxyName] == nil {
                if let problem = await run.settle(on: current) {
                    return .refused("cannot point the proxy at \(spec.containerName): \(problem)")
                }
            }
            for item in plan.stop {
                try? await context.engine.stopContainer(item.id, timeout: spec.stopTimeout)
                context.say(spec, "stop", "\(item.name) (\(item.reason))")
            }
            return await run.prune(mine.backups(of: spec), summary: "in sync")
        case .start:
            guard let current else { return .refused("no container to start") }
            if let refusal = await run.ensureProxy(host: host, start: true) { return refusal }
            return await run.restart(desired, current: current, mine: mine, host: host)
        case .create, .replace:
            return await run.replace(desired, current: current, mine: mine, host: host)
        }
    }

    /// One deploy in progress.
    struct Run {
        let spec: EnvironmentSpec
        let context: DeployContext
        let proxies: any ProxyRuntime
        var engine: any ContainerEngine { context.engine }

        func abortIfAsked(_ step: Step) {
            if context.abortAt == step.rawValue { kill(getpid(), SIGKILL) }
        }

        // MARK: Proxy

        /// Makes sure the network and the proxy exist as the file says, and with `start`, that the
        /// proxy runs and answers on its admin socket. The refusal when it cannot.
        func ensureProxy(host: HostState, start: Bool) async -> DeployOutcome? {
            // First what changes nothing: the network's owner, the proxy's folder, its image.
            let folder: String
            let network: NetworkSnapshot?
            var proxy = host.containers.first { $0.isProxy(of: spec) }
            let replace = await proxy.asyncMap { await replaceReason($0) } ?? nil
            let image = spec.proxy.image.description
            do {
                network = try await engine.network(spec.networkName)
                if let network,
                    network.labels[Labels.managed] != "true" || network.labels[Labels.service] != spec.service
                        || network.labels[Labels.environment] != spec.environment
                {
                    return .refused(
                        "a network named \(spec.networkName) that reconcile did not create exists; remove or "
                            + "rename it (docker network rm \(spec.networkName)); nothing was changed")
                }
                folder = try proxies.prepare(spec.proxyName, configuration: ProxyConfig.configuration(spec))
                if proxy == nil || replace != nil, try await engine.inspectImage(image) == nil {
                    guard spec.pull != .never else {
                        return .refused(
                            "proxy image \(image) is not on this host and pull is never; nothing was changed")
                    }
                    let started = context.clock.now()
                    try await Deadline.run(.seconds(3600)) { try await engine.pull(image) { _ in } }
                    context.say(spec, "pull", "pulled \(image)", since: started)
                }
            } catch {
                return .refused("cannot set up the proxy \(spec.proxyName): \(error); nothing was changed")
            }
            do {
                if network == nil {
                    try await engine.createNetwork(spec.networkName, labels: ProxyConfig.networkLabels(spec))
                    context.say(spec, "network", "created \(spec.networkName)")
                }
                if let existing = proxy, let replace {
                    try await engine.removeContainer(existing.id, force: true)
                    context.say(spec, "proxy", "removed \(existing.name) (\(replace))")
                    proxy = nil
                }
                let id: String
                if let proxy {
                    id = proxy.id
                } else {
                    id = try await engine.createContainer(ProxyConfig.creation(spec, folder: folder))
                    context.say(spec, "proxy", "created \(spec.proxyName) (\(image)) for port \(spec.port)")
                }
                guard start else { return nil }
                return await startProxy(id, running: proxy?.state == .running)
            } catch {
                return .refused("cannot set up the proxy \(spec.proxyName): \(error)")
            }
        }

        /// Why the existing proxy must be made again, or nil when it can stay.
        func replaceReason(_ proxy: ContainerSnapshot) async -> String? {
            if proxy.labels[Labels.proxyConfig] != ProxyConfig.fingerprint(spec) { return "its settings changed" }
            if proxy.state == .running, proxy.networks[spec.networkName] == nil {
                return "it is not on \(spec.networkName) any more"
            }
            if proxy.state == .running, (try? await proxies.routing(spec.proxyName)) == nil {
                return "its admin socket does not answer in this state directory (its folder was lost, or it was "
                    + "made with another --state-dir)"
            }
            return nil
        }

        /// Starts the proxy unless it runs, and waits for its admin socket.
        func startProxy(_ id: String, running: Bool) async -> DeployOutcome? {
            let started = context.clock.now()
            if !running {
                do {
                    try await engine.startContainer(id)
                } catch {
                    return .refused("cannot start the proxy \(spec.proxyName): \(error)")
                }
            }
            var last = "no answer"
            for _ in 0..<200 {
                do {
                    _ = try await proxies.routing(spec.proxyName)
                    if !running { context.say(spec, "proxy", "started \(spec.proxyName)", since: started) }
                    return nil
                } catch {
                    last = "\(error)"
                }
                if let exited = try? await engine.inspectContainer(id), exited.state != .running {
                    let logs = (try? await engine.logs(id, tail: 5)).map {
                        $0.split(separator: "\n").joined(separator: " | ")
                    }
                    return .refused(
                        "the proxy \(spec.proxyName) exited (\(exited.state.rawValue)) at start"
                            + (logs.map { ": \($0)" } ?? ""))
                }
                try? await context.clock.sleep(for: .milliseconds(50))
            }
            return .refused(
                "the proxy \(spec.proxyName) runs but its admin socket did not answer within 10 s (\(last)). Is the engine "
                    + "on another host, or does reconcile run in a container without the state directory mounted at the "
                    + "same path? The proxy's folder must be the same path for both")
        }

        /// Points `live` at `container` and disables `next`: requests go to it alone.
        func settle(on container: ContainerSnapshot) async -> String? {
            guard let address = try? await networkAddress(of: container.id) else {
                return "\(container.name) has no address on \(spec.networkName)"
            }
            do {
                try await proxies.enable(
                    spec.proxyName, server: ProxyConfig.liveServer, address: address, port: spec.containerPort)
                try await proxies.disable(spec.proxyName, server: ProxyConfig.nextServer)
            } catch {
                return "\(error)"
            }
            context.say(spec, "route", "the proxy sends requests to \(container.name) (\(address))")
            return nil
        }

        /// The container's address on the environment's network.
        func networkAddress(of id: String) async throws -> String {
            guard let container = try await engine.inspectContainer(id),
                let address = container.networks[spec.networkName]
            else { throw ProxyError("the container \(id.prefix(12)) has no address on \(spec.networkName)") }
            return address
        }

        /// One GET of the health path through the public port: nil when it answers as expected.
        func checkPublic() async -> String? {
            var last = "no answer"
            for attempt in 0..<5 {
                if attempt > 0 { try? await context.clock.sleep(for: .milliseconds(100)) }
                let answer = await context.verifier.probe.get(
                    host: spec.probeHost, port: spec.port, path: spec.health.path, timeout: spec.health.timeout)
                let result = Judge.health(answer, spec.health)
                if result.passed { return nil }
                last = result.message
            }
            return last
        }

        // MARK: Replace

        func replace(
            _ desired: DesiredEnvironment, current: ContainerSnapshot?, mine: [ContainerSnapshot], host: HostState
        ) async -> DeployOutcome {
            // The old version publishes the port itself (stop-first until now): the proxy can
            // start only once it has stopped.
            let migrating =
                current.map { $0.holdsPort && $0.ports.contains { $0.holds(spec.hostAddress) } } ?? false
            if let refusal = await ensureProxy(host: host, start: !migrating) { return refusal }

            // 2. The new version beside the old one, gated at its own address.
            var started = context.clock.now()
            let folder: SecretFolder?
            do {
                folder = try ContainerCreation.writeSecretFiles(
                    desired, to: context.secretFiles, container: spec.candidateName,
                    user: host.images[desired.imageKey]?.user)
            } catch {
                return .refused("\(error); nothing was changed")
            }
            let creation = ContainerCreation(
                desired: desired, name: spec.candidateName, revision: context.revision,
                deployedAt: context.wallClock(), secretFolder: folder)
            let candidateID: String
            do {
                candidateID = try await engine.createContainer(creation)
            } catch {
                if let folder { context.secretFiles?.remove(folder.path) }
                return .refused("\(error); nothing was changed")
            }
            context.recorder.step(.created) { $0.candidateID = candidateID }
            abortIfAsked(.afterCreate)
            context.say(
                spec, "create", "\(spec.candidateName) (\(candidateID.prefix(12))) from \(spec.image)", since: started)
            let kept = current.map { "\($0.shownImage) (\($0.shortID)) serves throughout" } ?? "nothing ran before"

            context.recorder.step(.gating) { $0.gatingID = candidateID }
            started = context.clock.now()
            do {
                try await engine.startContainer(candidateID)
            } catch {
                return await discard(candidateID, labels: creation.labels, failure: "\(error)", kept: kept)
            }
            context.say(spec, "start", spec.candidateName, since: started)
            abortIfAsked(.duringGate)
            let gateStart = context.clock.now()
            let address: String
            do {
                address = try await networkAddress(of: candidateID)
            } catch {
                return await discard(candidateID, labels: creation.labels, failure: "\(error)", kept: kept)
            }
            let verdict = await context.verifier.verify(
                spec, containerID: candidateID, startedAt: gateStart, restartsBefore: 0,
                target: ProbeTarget(host: address, port: spec.containerPort))
            for line in verdict.lines { context.say(spec, "gate", line) }
            if let failure = verdict.failure {
                if !verdict.interfered { context.recorder.versionFailedItsChecks() }
                return await discard(candidateID, labels: creation.labels, failure: failure, kept: kept)
            }
            context.recorder.step(.verified) { $0.gatingID = nil }
            abortIfAsked(.afterGate)

            // 3. Names: the old version becomes a backup, the new one the active container.
            var backups = mine.backups(of: spec)
            var backup: ContainerSnapshot?
            if let current {
                let verified = context.unverifiedID != current.id
                let name = spec.nextBackupName(existing: host.containers.map(\.name), verified: verified)
                context.recorder.step(.verified) { $0.backupName = name }
                do {
                    try await engine.renameContainer(current.id, to: name)
                } catch {
                    return await discard(
                        candidateID, labels: creation.labels,
                        failure: "cannot rename \(spec.containerName) aside to \(name): \(error)", kept: kept)
                }
                abortIfAsked(.afterRename)
                context.say(spec, "backup", "\(spec.containerName) → \(name)")
                var renamed = current
                renamed.name = name
                backup = renamed
                backups.insert(renamed, at: 0)
            }
            do {
                try await engine.renameContainer(candidateID, to: spec.containerName)
            } catch {
                if let current { try? await engine.renameContainer(current.id, to: spec.containerName) }
                return await discard(
                    candidateID, labels: creation.labels,
                    failure: "the new version passed its gate but cannot take the name \(spec.containerName): \(error)",
                    kept: kept)
            }
            context.say(spec, "promote", "\(spec.candidateName) → \(spec.containerName)")
            abortIfAsked(.afterPromote)

            // 4. The switch.
            if migrating, let backup {
                return await moveBehindProxy(
                    candidateID: candidateID, labels: creation.labels, old: backup, backups: backups)
            }
            let switched = context.clock.now()
            context.recorder.step(.switched)
            do {
                try await proxies.enable(
                    spec.proxyName, server: ProxyConfig.nextServer, address: address, port: spec.containerPort)
                try await proxies.disable(spec.proxyName, server: ProxyConfig.liveServer)
            } catch {
                return await switchBack(
                    candidateID: candidateID, labels: creation.labels, old: backup,
                    failure: "cannot switch the proxy: \(error)")
            }
            context.say(spec, "switch", "the proxy sends new requests to \(address)", since: switched)
            abortIfAsked(.afterSwitch)
            if let problem = await checkPublic() {
                context.recorder.versionFailedItsChecks()
                return await switchBack(
                    candidateID: candidateID, labels: creation.labels, old: backup,
                    failure: "the new version passed its gate but not through port \(spec.port): \(problem)")
            }

            // 5. Drain, 6. settle, 7. stop the old version.
            if let backup { await drain(backup) }
            if let problem = await settleAfterSwitch(address: address) {
                context.say(spec, "route", problem, ok: false)
            }
            abortIfAsked(.afterSettle)
            for container in backups where container.holdsPort {
                started = context.clock.now()
                do {
                    try await engine.stopContainer(container.id, timeout: spec.stopTimeout)
                    context.say(spec, "stop", container.name, since: started)
                } catch {
                    context.say(spec, "stop", "could not stop \(container.name): \(error)", ok: false)
                }
            }
            return await prune(backups, summary: "\(spec.image) serving on port \(spec.port) through the proxy")
        }

        /// Waits until the old version serves no request, at most `drain_timeout`.
        func drain(_ old: ContainerSnapshot) async {
            let started = context.clock.now()
            let deadline = started + spec.proxy.drainTimeout
            var sessions = 0
            while true {
                abortIfAsked(.duringDrain)
                sessions = (try? await proxies.sessions(spec.proxyName, server: ProxyConfig.liveServer)) ?? 0
                if sessions == 0 || context.clock.now() >= deadline { break }
                try? await context.clock.sleep(for: .milliseconds(50))
            }
            let left = sessions == 0 ? "" : "; \(sessions) still in flight at drain_timeout"
            context.say(spec, "drain", "\(old.name) finished its requests\(left)", since: started)
        }

        /// After the drain: `live` (which follows the active name) takes the new version's address
        /// and requests again, and `next` goes back to disabled.
        func settleAfterSwitch(address: String) async -> String? {
            do {
                try await proxies.enable(
                    spec.proxyName, server: ProxyConfig.liveServer, address: address, port: spec.containerPort)
                try await proxies.disable(spec.proxyName, server: ProxyConfig.nextServer)
                // A `live` that had no address yet (a first deploy) leaves its DNS maintenance
                // at the next resolution: wait for it, so that a diff right after sees it settled.
                for _ in 0..<100 {
                    if try await proxies.routing(spec.proxyName).settled(on: address) { break }
                    try? await context.clock.sleep(for: .milliseconds(50))
                }
                return nil
            } catch {
                return "could not settle the proxy's routing (\(error)); it sends requests to the new version, and "
                    + "the next apply settles it"
            }
        }

        /// The new version failed before it took a request: remove it. The old one never stopped.
        func discard(_ id: String, labels: [String: String], failure: String, kept: String) async -> DeployOutcome {
            context.recorder.step(.rollingBack)
            let text = await context.failed(spec, id, failure)
            do {
                try await context.remove(id, labels: labels)
            } catch {
                return .rollbackFailed(
                    failure: text,
                    state:
                        "the failed version \(id.prefix(12)) could not be removed (\(error)); the proxy never sent it "
                        + "a request. \(kept)")
            }
            // What serves now is checked, not assumed: the old version may have been stopped or
            // removed by hand meanwhile.
            let live = try? await engine.inspectContainer(spec.containerName)
            if kept != "nothing ran before", live?.state != .running {
                if let live, live.isManaged(service: spec.service, environment: spec.environment),
                    (try? await engine.startContainer(live.id)) != nil,
                    await gateInPlace(live.id, restartsBefore: live.restartCount, healthOnly: true) == nil
                {
                    _ = await settle(on: live)
                    context.say(
                        spec, "rollback", "removed the new version; started \(live.name) again (it was stopped)")
                    return .rolledBack(
                        failure: text,
                        restored: "\(live.shownImage) (\(live.shortID)) serves again (it had been stopped)")
                }
                let state = await StopStartStrategy().describe(spec, context: context)
                return .rollbackFailed(
                    failure: text,
                    state: "the new version was removed, but the old one no longer runs (stopped or removed during the "
                        + "deploy?). \(state)")
            }
            context.say(spec, "rollback", "removed the new version; \(kept)")
            return .rolledBack(failure: text, restored: kept)
        }

        /// The switch or the check through the port failed: the old version takes requests again
        /// (it never stopped) and its name back; the new one is removed.
        func switchBack(candidateID: String, labels: [String: String], old: ContainerSnapshot?, failure: String)
            async -> DeployOutcome
        {
            let started = context.clock.now()
            context.recorder.step(.rollingBack)
            context.say(spec, "failed", failure, ok: false)
            guard let old else {
                try? await context.remove(candidateID, labels: labels)
                return .rolledBack(
                    failure: failure, restored: "there was no earlier version to restore; nothing of it runs now")
            }
            do {
                try await engine.renameContainer(candidateID, to: spec.candidateName)
                try await engine.renameContainer(old.id, to: spec.containerName)
                let address = try await networkAddress(of: old.id)
                try await proxies.enable(
                    spec.proxyName, server: ProxyConfig.liveServer, address: address, port: spec.containerPort)
                try await proxies.disable(spec.proxyName, server: ProxyConfig.nextServer)
            } catch {
                let state = await StopStartStrategy().describe(spec, context: context)
                return .rollbackFailed(failure: failure, state: "switching back failed (\(error)). \(state)")
            }
            context.say(
                spec, "rollback", "switched back to \(old.shownImage) (\(old.shortID)) as \(spec.containerName)",
                since: started)
            try? await context.remove(candidateID, labels: labels)
            return .rolledBack(failure: failure, restored: "\(old.shownImage) (\(old.shortID)) serves again")
        }

        /// From stop-first: stop the old version (it holds the port), start the proxy, check
        /// through the port. On failure the proxy goes and the old version comes back on the port.
        func moveBehindProxy(
            candidateID: String, labels: [String: String], old: ContainerSnapshot, backups: [ContainerSnapshot]
        ) async -> DeployOutcome {
            let started = context.clock.now()
            context.recorder.step(.switched)
            var failure: String?
            do {
                try await engine.stopContainer(old.id, timeout: spec.stopTimeout)
                context.say(spec, "stop", "\(old.name) (the port moves to the proxy)", since: started)
            } catch {
                failure = "cannot stop \(old.name) to hand its port to the proxy: \(error)"
            }
            if failure == nil, let proxy = try? await engine.inspectContainer(spec.proxyName) {
                if case .refused(let reason) = await startProxy(proxy.id, running: false) { failure = reason }
            } else if failure == nil {
                failure = "the proxy \(spec.proxyName) is gone"
            }
            if failure == nil, let problem = await checkPublic() {
                failure = "the new version passed its gate but not through port \(spec.port): \(problem)"
            }
            guard let failure else {
                context.say(spec, "switch", "the proxy owns port \(spec.port)", since: started)
                return await prune(backups, summary: "\(spec.image) serving on port \(spec.port) through the proxy")
            }
            context.recorder.step(.rollingBack)
            context.say(spec, "failed", failure, ok: false)
            do {
                if let proxy = try await engine.inspectContainer(spec.proxyName) {
                    try await engine.removeContainer(proxy.id, force: true)
                }
                try await context.remove(candidateID, labels: labels)
                try await engine.renameContainer(old.id, to: spec.containerName)
                try await engine.startContainer(old.id)
            } catch {
                let state = await StopStartStrategy().describe(spec, context: context)
                return .rollbackFailed(failure: failure, state: "restoring \(old.name) failed (\(error)). \(state)")
            }
            let verdict = await context.verifier.verify(
                spec.forRestore, containerID: old.id, startedAt: context.clock.now(),
                restartsBefore: old.restartCount, healthOnly: true)
            if let problem = verdict.failure {
                let state = await StopStartStrategy().describe(spec, context: context)
                return .rollbackFailed(failure: failure, state: "the restored \(old.name) fails: \(problem). \(state)")
            }
            context.say(
                spec, "rollback", "restored \(old.shownImage) (\(old.shortID)) on port \(spec.port)", since: started)
            return .rolledBack(failure: failure, restored: "\(old.shownImage) (\(old.shortID)) serves again")
        }

        // MARK: Start

        /// Starts (or unpauses, or re-checks) the active container, gates it at its address and
        /// points the proxy at it. On failure it is kept stopped as an unverified backup and the
        /// newest backup that passes a health check takes its place.
        func restart(
            _ desired: DesiredEnvironment, current: ContainerSnapshot, mine: [ContainerSnapshot], host: HostState
        ) async -> DeployOutcome {
            let backups = mine.backups(of: spec)
            context.recorder.step(.gating) { $0.gatingID = current.id }
            let restartsBefore = (try? await engine.inspectContainer(current.id))?.restartCount ?? 0
            var failure: String?
            do {
                try ContainerCreation.restoreSecretFiles(
                    desired, of: current, to: context.secretFiles, user: host.images[desired.imageKey]?.user)
                switch current.state {
                case .running where current.health == "unhealthy":
                    try await engine.stopContainer(current.id, timeout: spec.stopTimeout)
                    try await engine.startContainer(current.id)
                    context.say(spec, "restart", "\(spec.containerName) (its healthcheck said unhealthy)")
                case .running: context.say(spec, "check", "\(spec.containerName) was never verified; gating it now")
                case .paused: try await engine.unpauseContainer(current.id)
                default: try await engine.startContainer(current.id)
                }
            } catch {
                failure = "\(error)"
            }
            if failure == nil {
                failure = await gateInPlace(current.id, restartsBefore: restartsBefore, healthOnly: false)
            }
            guard let failure else {
                if let problem = await settle(on: current) { context.say(spec, "route", problem, ok: false) }
                return await prune(backups, summary: "\(spec.image) serving on port \(spec.port) through the proxy")
            }
            context.recorder.step(.rollingBack)
            context.say(spec, "failed", failure, ok: false)
            let name = spec.nextBackupName(existing: mine.map(\.name), verified: false)
            try? await engine.renameContainer(current.id, to: name)
            try? await engine.stopContainer(current.id, timeout: spec.stopTimeout)
            context.say(spec, "backup", "\(current.name) → \(name) (kept, stopped: it failed its gate)")
            for backup in backups {
                let before = (try? await engine.inspectContainer(backup.id))?.restartCount ?? 0
                do {
                    try await engine.renameContainer(backup.id, to: spec.containerName)
                    try await engine.startContainer(backup.id)
                } catch {
                    try? await engine.renameContainer(backup.id, to: backup.name)
                    continue
                }
                if let problem = await gateInPlace(backup.id, restartsBefore: before, healthOnly: true) {
                    context.say(spec, "rollback", "could not restore \(backup.name): \(problem)", ok: false)
                    try? await engine.stopContainer(backup.id, timeout: spec.stopTimeout)
                    try? await engine.renameContainer(backup.id, to: backup.name)
                    continue
                }
                var restored = backup
                restored.name = spec.containerName
                if let problem = await settle(on: restored) { context.say(spec, "route", problem, ok: false) }
                return .rolledBack(failure: failure, restored: "\(backup.shownImage) (\(backup.shortID)) serves again")
            }
            let state = await StopStartStrategy().describe(spec, context: context)
            return .rollbackFailed(failure: failure, state: "no backup could be restored. \(state)")
        }

        /// Gates a started container at its own address; the failure, or nil.
        func gateInPlace(_ id: String, restartsBefore: Int, healthOnly: Bool) async -> String? {
            let started = context.clock.now()
            let address: String
            do {
                address = try await networkAddress(of: id)
            } catch {
                return "\(error)"
            }
            let verdict = await context.verifier.verify(
                healthOnly ? spec.forRestore : spec, containerID: id, startedAt: started,
                restartsBefore: restartsBefore, healthOnly: healthOnly,
                target: ProbeTarget(host: address, port: spec.containerPort))
            for line in verdict.lines { context.say(spec, "gate", line) }
            return verdict.failure
        }

        func prune(_ backups: [ContainerSnapshot], summary: String) async -> DeployOutcome {
            await context.prune(spec, backups: backups, summary: summary)
        }
    }
}

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async -> T) async -> T? {
        guard let value = self else { return nil }
        return await transform(value)
    }
}
