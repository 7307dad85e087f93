/// Reads what the engine runs, once for a whole set of environments.
public struct Observer: Sendable {
    public let engine: any ContainerEngine
    /// Checks host ports that no running container publishes; nil skips the check.
    public let hostPorts: (any HostPorts)?
    /// Asks blue-green proxies where they send requests; nil leaves routing unknown.
    public let proxies: (any ProxyRuntime)?
    /// Inspections kept from earlier looks (watch's interval passes); nil inspects every time.
    public let inspections: InspectionCache?

    public init(
        engine: any ContainerEngine, hostPorts: (any HostPorts)? = nil, proxies: (any ProxyRuntime)? = nil,
        inspections: InspectionCache? = nil
    ) {
        self.engine = engine
        self.hostPorts = hostPorts
        self.proxies = proxies
        self.inspections = inspections
    }

    /// Lists every container (each environment's active one inspected in full), resolves each
    /// spec's image locally and, with `hostPorts`, finds the
    /// specs' host ports that a process outside the engine holds; changes nothing.
    public func observe(_ specs: [EnvironmentSpec]) async throws -> HostState {
        var containers = try await engine.containers()
        // The active containers in full: what they were really created with, to find changes by hand.
        for spec in specs {
            guard let index = containers.firstIndex(where: { $0.name == spec.containerName }) else { continue }
            let listed = containers[index]
            if let kept = inspections?.inspection(of: listed) {
                containers[index] = kept
                continue
            }
            guard let full = try await engine.inspectContainer(listed.id) else { continue }
            containers[index] = full
            inspections?.keep(full, listedAs: listed)
        }
        var images: [String: ImageSnapshot] = [:]
        let proxyImages = specs.filter { $0.strategy == .blueGreen }.map(\.proxy.image.description)
        for reference in Set(specs.map(\.image.description) + proxyImages).sorted() {
            images[reference] = try await engine.inspectImage(reference)
        }
        var portsInUse: Set<HostAddress> = []
        if let hostPorts {
            // A port a running container publishes is held by the engine's proxy, not a stranger.
            let published = containers.filter(\.holdsPort).flatMap(\.ports)
            // A Swarm service's port is the swarm's (its routing mesh, or its tasks'), not a stranger's.
            for address in Set(specs.filter { $0.platform != .swarm }.map(\.hostAddress))
            where !published.contains(where: { $0.holds(address) }) && hostPorts.inUse(address) {
                portsInUse.insert(address)
            }
        }
        var host = HostState(containers: containers, images: images, portsInUse: portsInUse)
        let services = specs.filter { $0.platform == .swarm }
        if !services.isEmpty {
            host.swarmNodes = try await engine.swarmNodes()
            // A service stands in for the environment's container (unless a container has its name).
            for spec in services where host.swarmNodes != nil {
                guard let service = try await engine.service(spec.containerName) else { continue }
                let tasks = try await engine.tasks(ofService: service.id)
                host.tasks[service.name] = tasks
                if !host.containers.contains(where: { $0.name == service.name }) {
                    // No task runs (a secret removed by hand, a dead node) and Swarm is not rolling
                    // them: the service serves nothing, and is started again (redeployed).
                    let rolling = ["updating", "rollback_started"].contains(service.updateState ?? "")
                    host.containers.append(rolling ? service.asContainer : service.asContainer(tasks: tasks))
                }
            }
        }
        for spec in specs where spec.strategy == .blueGreen {
            host.networks[spec.networkName] = try await engine.network(spec.networkName)
        }
        if let proxies {
            for spec in specs where spec.strategy == .blueGreen {
                guard let proxy = containers.first(where: { $0.isProxy(of: spec) }), proxy.state == .running else {
                    continue
                }
                // A proxy that cannot be asked leaves its routing unknown; apply points it anyway.
                host.routing[proxy.name] = try? await proxies.routing(proxy.name)
            }
        }
        return host
    }
}

/// Full inspections of containers, kept while the engine's list shows each container unchanged
/// and no event has touched it: an interval pass of `watch` over environments in sync then costs
/// one list, not one inspect per environment. What only an inspect shows (the configuration) does
/// not change without an event (`update`, `start`, `health_status`, …) that `forget` is told of;
/// an entry older than `maxAge` is inspected again all the same.
public final class InspectionCache: Sendable {
    private struct Entry {
        var listed: ContainerSnapshot
        var full: ContainerSnapshot
        var at: ContinuousClock.Instant
    }

    private let entries = Locked([String: Entry]())
    private let maxAge: Duration

    public init(maxAge: Duration = .seconds(600)) { self.maxAge = maxAge }

    /// The kept inspection of a container the list shows exactly as when it was kept.
    public func inspection(of listed: ContainerSnapshot) -> ContainerSnapshot? {
        entries.withLock { entries in
            guard let entry = entries[listed.id] else { return nil }
            guard entry.listed == listed, ContinuousClock.now - entry.at < maxAge else {
                entries[listed.id] = nil
                return nil
            }
            return entry.full
        }
    }

    public func keep(_ full: ContainerSnapshot, listedAs listed: ContainerSnapshot) {
        entries.withLock { $0[listed.id] = Entry(listed: listed, full: full, at: .now) }
    }

    /// An event touched the container (any action): it is inspected again next time.
    public func forget(_ id: String) { entries.withLock { $0[id] = nil } }

    /// The engine went away and came back (or another engine answers): everything again.
    public func forgetAll() { entries.withLock { $0 = [:] } }

    public var count: Int { entries.withLock { $0.count } }
}
