import Crypto
import Foundation

/// What the host runs, as observed once for all environments.
public struct HostState: Sendable {
    public var containers: [ContainerSnapshot]
    /// Local images by the reference the spec names; a reference missing here is not on the host.
    public var images: [String: ImageSnapshot]
    /// Addresses no running container publishes but a process on the host listens on.
    public var portsInUse: Set<HostAddress>
    /// Where each running blue-green proxy sends requests, by proxy container name (missing when
    /// it could not be asked).
    public var routing: [String: ProxyRouting] = [:]
    /// Networks that blue-green environments need, by name, when they exist (nil: none by that name).
    public var networks: [String: NetworkSnapshot] = [:]
    /// The swarm's nodes when a spec is a Swarm service and the engine is a manager (nil: not one).
    public var swarmNodes: [SwarmNode]?
    /// Swarm services' tasks, by service name.
    public var tasks: [String: [TaskSnapshot]] = [:]

    public init(
        containers: [ContainerSnapshot], images: [String: ImageSnapshot], portsInUse: Set<HostAddress> = []
    ) {
        self.containers = containers
        self.images = images
        self.portsInUse = portsInUse
    }
}

/// A spec with the secret values available to this process (none in CI).
public struct DesiredEnvironment: Sendable {
    public var spec: EnvironmentSpec
    public var secretValues: [String: String]
    /// The host's key for secret fingerprints; nil where it is not (CI): secrets then read as unknown.
    public var fingerprintKey: [UInt8]?
    /// Problems found while resolving it (an unreadable secrets_file), shown first among the plan's warnings.
    public var warnings: [String]
    /// The exact image to run instead of whatever the tag points at now (an earlier revision
    /// re-applied runs the bytes it ran then).
    public var pin: ImagePin?
    /// The revision this desired state was read from when it is not the file as it is now (a
    /// rollback, a hold); labels and the journal record it.
    public var revision: FileRevision?

    public init(
        spec: EnvironmentSpec, secretValues: [String: String] = [:], fingerprintKey: [UInt8]? = nil,
        warnings: [String] = []
    ) {
        self.spec = spec
        self.secretValues = secretValues
        self.fingerprintKey = fingerprintKey
        self.warnings = warnings
    }

    public var missingSecrets: [String] { spec.secrets.filter { secretValues[$0] == nil } }

    /// What the image is looked up and created by: the pinned image id, else the spec's reference.
    public var imageKey: String { pin?.id ?? spec.image.description }
    public var runtimeConfig: RuntimeConfig {
        RuntimeConfig(spec: spec, secretValues: secretValues, key: fingerprintKey)
    }

    /// What identifies this desired state for the memory of failed deploys: the runtime
    /// configuration (secret fingerprints included) and the image id it resolves to here.
    public func deployIdentity(imageID: String?) -> String {
        let text = runtimeConfig.canonicalJSON + "\u{0}" + (imageID ?? "")
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The configuration to compare with `stored`: secrets that `stored` fingerprints the earlier,
    /// unkeyed way are fingerprinted that way too, so an upgrade does not read as a secret change.
    func runtimeConfig(comparedWith stored: RuntimeConfig?) -> RuntimeConfig {
        let legacy = Set((stored?.secrets ?? [:]).filter { RuntimeConfig.isLegacy($0.value) }.keys)
        guard !legacy.isEmpty else { return runtimeConfig }
        return RuntimeConfig(spec: spec, secretValues: secretValues, key: fingerprintKey, legacy: legacy)
    }
}

/// Decides, without any I/O, what apply would change to make the host match one environment.
/// The exact image an earlier revision ran: its local id, and its registry digest when it had one.
public struct ImagePin: Sendable, Equatable {
    public var id: String
    public var digest: String?
    /// The revision that ran it.
    public var revision: String

    public init(id: String, digest: String?, revision: String) {
        self.id = id
        self.digest = digest
        self.revision = revision
    }
}

public enum Differ {
    public static func plan(_ desired: DesiredEnvironment, host: HostState) -> EnvironmentPlan {
        var plan = versionPlan(desired, host: host)
        guard plan.action != .conflict else { return plan }
        if desired.spec.platform == .swarm, let tasks = host.tasks[desired.spec.containerName] {
            plan.tasks = TaskSnapshot.summary(
                tasks.filter { $0.desiredState == "running" }, nodes: host.swarmNodes ?? [],
                replicas: desired.spec.swarm.replicas)
        }
        plan.proxy = proxyChange(desired.spec, host: host, action: plan.action)
        plan.stop = runningBackups(desired.spec, host: host, action: plan.action)
        return plan
    }

    /// What becomes of the environment's proxy: created, recreated, started or re-pointed under
    /// blue-green; removed under stop-first.
    static func proxyChange(_ spec: EnvironmentSpec, host: HostState, action: EnvironmentPlan.Action)
        -> ProxyChange?
    {
        let proxy = host.containers.first { $0.isProxy(of: spec) }
        guard spec.strategy == .blueGreen else {
            guard let proxy else { return nil }
            return ProxyChange(
                action: .remove,
                reason: "strategy is \(spec.strategy.rawValue): \(proxy.name) goes and the container publishes port "
                    + "\(spec.port) itself (the port answers nothing from the proxy's stop until the new version starts)"
            )
        }
        let movesPort = host.containers.contains {
            $0.isManaged(service: spec.service, environment: spec.environment) && $0.holdsPort
                && $0.ports.contains { $0.holds(spec.hostAddress) }
        }
        let cost = movesPort ? " (the port moves from the container to the proxy: about a second without service)" : ""
        guard let proxy else {
            return ProxyChange(
                action: .create,
                reason: "\(spec.proxyName) (\(spec.proxy.image)) will own port \(spec.port)\(cost)")
        }
        if proxy.labels[Labels.proxyConfig] != ProxyConfig.fingerprint(spec) {
            let image =
                proxy.image == spec.proxy.image.description ? "" : " (image \(proxy.image) → \(spec.proxy.image))"
            return ProxyChange(
                action: .recreate,
                reason: "the proxy's settings changed\(image); replacing \(spec.proxyName) leaves port \(spec.port) "
                    + "without service for about a second")
        }
        guard proxy.holdsPort, proxy.state == .running else {
            return ProxyChange(action: .start, reason: "\(spec.proxyName) is \(proxy.state.rawValue)")
        }
        if proxy.networks[spec.networkName] == nil {
            return ProxyChange(
                action: .recreate,
                reason: "\(spec.proxyName) is not on \(spec.networkName) (disconnected or removed by hand?); replacing "
                    + "it leaves port \(spec.port) without service for about a second")
        }
        // A replace or a start points the proxy at the new version anyway.
        guard action == .inSync, let routing = host.routing[proxy.name],
            let live = host.containers.first(where: { $0.name == spec.containerName }), live.state == .running,
            let address = live.networks[spec.networkName]
        else { return nil }
        guard !routing.settled(on: address) else { return nil }
        return ProxyChange(
            action: .route, reason: "\(routing.summary); apply points it at \(spec.containerName) (\(address)) alone")
    }

    /// Under blue-green, backups that still run (an apply interrupted while the old version
    /// drained): apply stops them.
    static func runningBackups(_ spec: EnvironmentSpec, host: HostState, action: EnvironmentPlan.Action)
        -> [PruneItem]
    {
        guard spec.strategy == .blueGreen, action == .inSync else { return [] }
        return host.containers.backups(of: spec).filter(\.holdsPort).map {
            PruneItem(name: $0.name, id: $0.id, reason: "a backup that still runs (an interrupted deploy)")
        }
    }

    static func versionPlan(_ desired: DesiredEnvironment, host: HostState) -> EnvironmentPlan {
        let spec = desired.spec
        var plan = EnvironmentPlan(
            file: spec.file, service: spec.service, environment: spec.environment, container: spec.containerName,
            action: .inSync)
        plan.approvalRequired = spec.approval == .required
        plan.engine = spec.engine?.description
        let mine = host.containers.filter { $0.isManaged(service: spec.service, environment: spec.environment) }
        let current = host.containers.first { $0.name == spec.containerName }
        plan.currentID = current?.id
        plan.lockedBy = host.containers.first { $0.name == spec.lockName && $0.isLease }
            .flatMap { LeaseHolder.decode($0.labels[EngineLock.leaseLabel])?.summary }

        plan.conflicts = conflicts(spec, current: current, host: host)
        guard plan.conflicts.isEmpty, let current else {
            if plan.conflicts.isEmpty {
                plan.action = .create
                plan.changes = FieldChange.all(of: desired.runtimeConfig)
            } else {
                plan.action = .conflict
            }
            plan.warnings = warnings(desired, host: host, needsImage: true)
            plan.prune = prune(mine, spec: spec, current: current, replacing: false)
            return plan
        }

        let stored = current.labels[Labels.config].flatMap(RuntimeConfig.decode(label:))
        let desiredConfig = desired.runtimeConfig(comparedWith: stored)
        var changes: [FieldChange] = []
        if current.labels[Labels.fingerprint] != desiredConfig.fingerprint {
            if let stored {
                changes = FieldChange.between(stored, desiredConfig)
            }
            if changes.isEmpty {
                changes = [
                    FieldChange(field: "config", old: "created by an older reconcile", new: "as in \(spec.file)")
                ]
            }
        } else if let stored {
            changes = FieldChange.secretChanges(stored, desiredConfig)
        }
        if let stored, let actual = current.actual {
            changes += FieldChange.byHand(actual, stored: stored, changes: changes)
        }
        if spec.strategy == .blueGreen, stored?.strategy == DeployStrategy.blueGreen.rawValue,
            current.state == .running,
            current.networks[spec.networkName] == nil
        {
            changes.append(
                FieldChange(
                    field: "network", old: "not on \(spec.networkName) (changed by hand)", new: spec.networkName))
        }
        // Stop-first publishes through the default bridge: a container disconnected from every
        // network (docker network disconnect) runs but answers nothing.
        if spec.strategy == .stopFirst, spec.platform == .container, !current.isService, current.state == .running,
            current.actual != nil, current.networks.isEmpty
        {
            changes.append(FieldChange(field: "network", old: "none (disconnected by hand)", new: "bridge"))
        }
        let wanted = desired.pin?.id ?? host.images[spec.image.description]?.id
        if let wanted, wanted != current.imageID, !changes.contains(where: { $0.field == "image" }) {
            let why = desired.pin.map { "as revision \(String($0.revision.prefix(12))) ran it" } ?? "the tag has moved"
            changes.insert(
                FieldChange(
                    field: "image", old: "\(spec.image) (\(short(current.imageID)))",
                    new: "\(spec.image) (\(short(wanted)), \(why))"),
                at: 0)
        }
        if !changes.isEmpty {
            plan.action = .replace
            plan.changes = changes
        } else if current.state == .running, current.health == "unhealthy" {
            // Its own HEALTHCHECK says it no longer serves: restart it and gate it again (a
            // failed gate then brings back the newest backup).
            plan.action = .start
            plan.changes = [FieldChange(field: "health", old: "unhealthy", new: "restart it and gate it")]
        } else if current.state != .running {
            // Stopped, exited, dead or paused: start (or unpause) it and gate it again.
            plan.action = .start
            plan.changes = [
                FieldChange(field: "state", old: current.state.rawValue, new: ContainerState.running.rawValue)
            ]
        }
        // An environment in sync (or only to be started) pulls nothing unless `pull: always`.
        let needsImage = plan.action == .replace || spec.pull == .always
        plan.warnings =
            warnings(desired, host: host, needsImage: needsImage) + strays(mine, spec: spec, current: current)
        plan.prune = prune(mine, spec: spec, current: current, replacing: plan.action == .replace)
        return plan
    }

    /// Containers with this environment's labels under a name reconcile does not use.
    static func strays(_ mine: [ContainerSnapshot], spec: EnvironmentSpec, current: ContainerSnapshot?) -> [String] {
        mine.filter { $0.id != current?.id && !$0.isBackup(of: spec) && $0.name != spec.candidateName }
            .sorted { $0.name < $1.name }
            .map {
                "container \($0.name) (\($0.shortID)) carries this environment's labels under a name reconcile does not "
                    + "use (renamed by hand?); it is left alone"
            }
    }

    static func conflicts(_ spec: EnvironmentSpec, current: ContainerSnapshot?, host: HostState) -> [String] {
        var found: [String] = []
        if spec.platform == .swarm {
            guard let nodes = host.swarmNodes else {
                return [
                    "platform: swarm needs a swarm manager, and this engine is not one; run `docker swarm init` there, "
                        + "or point engine: at a manager"
                ]
            }
            let eligible = nodes.filter { $0.ready && $0.active }.count
            if let never = spec.swarm.neverConverges(nodes: eligible, port: spec.port) { found.append(never) }
            if let current, !current.isService {
                found.append(
                    "a container named \(spec.containerName) (\(current.shortID)) runs here; a Swarm service cannot "
                        + "take its name and port. Remove it (docker rm -f \(spec.containerName)) to move the "
                        + "environment to Swarm")
            }
        }
        if let current, !current.isManaged(service: spec.service, environment: spec.environment) {
            let owner =
                current.isManaged
                ? "belongs to reconcile environment \"\(current.labels[Labels.environment] ?? "?")\" of service \"\(current.labels[Labels.service] ?? "?")\""
                : "was not created by reconcile"
            let kind = current.isService ? "service" : "container"
            let remove = current.isService ? "docker service rm" : "docker rm -f"
            found.append(
                "\(kind) \"\(spec.containerName)\" (\(current.shortID)) \(owner); reconcile will not touch it. "
                    + "Rename or remove it (\(remove) \(spec.containerName)), or change service/environment.")
        }
        // The names reconcile needs for a deploy: the candidate's must be ours or free.
        if let squatter = host.containers.first(where: {
            $0.name == spec.candidateName && !$0.isManaged(service: spec.service, environment: spec.environment)
        }) {
            found.append(
                "a container named \(spec.candidateName) (\(squatter.shortID)) that reconcile did not create holds the "
                    + "name reconcile gives new versions; remove or rename it (docker rm \(spec.candidateName))")
        }
        if spec.strategy == .blueGreen,
            let squatter = host.containers.first(where: { $0.name == spec.proxyName && !$0.isProxy(of: spec) })
        {
            found.append(
                "a container named \(spec.proxyName) (\(squatter.shortID)) that reconcile did not create holds the name "
                    + "of this environment's proxy; remove or rename it (docker rm \(spec.proxyName))")
        }
        if spec.strategy == .blueGreen, let network = host.networks[spec.networkName],
            network.labels[Labels.managed] != "true" || network.labels[Labels.service] != spec.service
                || network.labels[Labels.environment] != spec.environment
        {
            found.append(
                "a network named \(spec.networkName) that reconcile did not create exists; remove or rename it "
                    + "(docker network rm \(spec.networkName))")
        }
        // This environment's own containers (a backup still running after an interrupted apply)
        // are not in the way: apply stops them before it starts the new one.
        let holders = host.containers.filter { container in
            container.id != current?.id && container.holdsPort
                && !container.isManaged(service: spec.service, environment: spec.environment)
                && !container.isProxy(of: spec)
                && !(spec.platform == .swarm && container.labels[Labels.swarmService] == spec.containerName)
                && container.ports.contains { $0.holds(spec.hostAddress) }
        }
        for holder in holders.sorted(by: { $0.name < $1.name }) {
            found.append(
                "host port \(spec.port) is published by container \"\(holder.name)\" (\(holder.shortID)), "
                    + "which reconcile does not manage for this environment. Stop it or choose another port.")
        }
        // The observer only lists addresses that no running container publishes.
        if host.portsInUse.contains(spec.hostAddress) {
            found.append(
                "host port \(spec.port) is in use on this host by a process that is not a container "
                    + "(binding \(spec.bind):\(spec.port) failed). Stop that process "
                    + "(`ss -ltnp 'sport = :\(spec.port)'` names it) or choose another port.")
        }
        return found
    }

    static func bindsOverlap(_ lhs: String, _ rhs: String) -> Bool {
        let wildcards: Set<String> = ["", "0.0.0.0", "::"]
        return lhs == rhs || wildcards.contains(lhs) || wildcards.contains(rhs)
    }

    static func warnings(_ desired: DesiredEnvironment, host: HostState, needsImage: Bool) -> [String] {
        var warnings = desired.warnings
        let missing = desired.missingSecrets
        if !missing.isEmpty {
            warnings.append(
                "secret\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) not available here "
                    + "(set in the environment or secrets_file); diff cannot tell if \(missing.count == 1 ? "its value" : "their values") changed, and apply will refuse without \(missing.count == 1 ? "it" : "them")"
            )
        }
        if missing.isEmpty, !desired.spec.secrets.isEmpty, desired.fingerprintKey == nil {
            warnings.append(
                "no fingerprint key here (the state directory's fingerprint.key, made by the first apply on the host); "
                    + "diff cannot tell if secret values changed")
        }
        let spec = desired.spec
        if let pin = desired.pin, host.images[pin.id] == nil {
            warnings.append(
                pin.digest.map {
                    "image \(spec.image) as revision \(pin.revision.prefix(12)) ran it (\(short(pin.id))) is not on this host; apply will pull \($0)"
                }
                    ?? "image \(spec.image) as revision \(pin.revision.prefix(12)) ran it (\(short(pin.id))) is not on this host and has no registry digest; apply will refuse"
            )
        } else if desired.pin == nil, needsImage, host.images[spec.image.description] == nil {
            switch spec.pull {
            case .never:
                warnings.append("image \(spec.image) is not on this host and pull is never; apply will fail")
            case .missing, .always:
                warnings.append("image \(spec.image) is not on this host; apply will pull it")
            }
        }
        if spec.strategy == .blueGreen, !host.containers.contains(where: { $0.isProxy(of: spec) }),
            host.images[spec.proxy.image.description] == nil
        {
            warnings.append(
                spec.pull == .never
                    ? "proxy image \(spec.proxy.image) is not on this host and pull is never; apply will refuse"
                    : "proxy image \(spec.proxy.image) is not on this host; apply will pull it")
        }
        // EXPOSE is documentation, not a rule: a server may listen elsewhere, so this warns only.
        let image = desired.pin.flatMap { host.images[$0.id] } ?? host.images[spec.image.description]
        if let exposed = image?.exposedPorts, !exposed.isEmpty, !exposed.contains(spec.containerPort) {
            let ports = exposed.sorted()
            let list = ports.map { "\($0)" }.joined(separator: ", ")
            let advice =
                ports.count == 1
                ? "if the server listens on \(ports[0]), set container_port: \(ports[0])"
                : "set container_port to the one the server listens on"
            warnings.append(
                "container_port \(spec.containerPort) is not a port image \(spec.image) exposes (it exposes \(list)); "
                    + advice)
        }
        return warnings
    }

    /// Backups the deploy removes once the new version serves (counting the current container when
    /// a replace will make it one), and leftovers of an interrupted apply: managed containers that
    /// are neither active nor backups (a candidate that never took the active name).
    static func prune(_ mine: [ContainerSnapshot], spec: EnvironmentSpec, current: ContainerSnapshot?, replacing: Bool)
        -> [PruneItem]
    {
        let backups = mine.backups(of: spec).filter { $0.id != current?.id }
        var items = BackupPolicy.surplus(backups, of: spec, pending: replacing ? 1 : 0).map {
            PruneItem(
                name: $0.name, id: $0.id,
                reason: $0.isVerifiedBackup(of: spec)
                    ? "backup beyond the \(spec.backups) kept" : "backup that never passed its gate")
        }
        // Only a candidate is a leftover: a container renamed by hand is somebody's, and is left alone.
        let leftovers = mine.filter { $0.name == spec.candidateName && $0.id != current?.id }
        items += leftovers.sorted { $0.name < $1.name }.map {
            PruneItem(name: $0.name, id: $0.id, reason: "left over from an interrupted apply", leftover: true)
        }
        return items
    }

    static func short(_ id: String) -> String {
        let hex = id.hasPrefix("sha256:") ? id.dropFirst(7) : Substring(id)
        return String(hex.prefix(12))
    }
}
