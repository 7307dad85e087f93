/// Reads what the engine runs, once for a whole set of environments.
public struct Observer: Sendable {
    public let engine: any ContainerEngine
    /// Checks host ports that no running container publishes; nil skips the check.
    public let hostPorts: (any HostPorts)?

    public init(engine: any ContainerEngine, hostPorts: (any HostPorts)? = nil) {
        self.engine = engine
        self.hostPorts = hostPorts
    }

    /// Lists every container (each environment's active one inspected in full), resolves each
    /// spec's image locally and, with `hostPorts`, finds the
    /// specs' host ports that a process outside the engine holds; changes nothing.
    public func observe(_ specs: [EnvironmentSpec]) async throws -> HostState {
        var containers = try await engine.containers()
        // The active containers in full: what they were really created with, to find changes by hand.
        for spec in specs {
            guard let index = containers.firstIndex(where: { $0.name == spec.containerName }),
                let full = try await engine.inspectContainer(containers[index].id)
            else { continue }
            containers[index] = full
        }
        var images: [String: ImageSnapshot] = [:]
        for reference in Set(specs.map(\.image.description)).sorted() {
            images[reference] = try await engine.inspectImage(reference)
        }
        var portsInUse: Set<HostAddress> = []
        if let hostPorts {
            // A port a running container publishes is held by the engine's proxy, not a stranger.
            let published = containers.filter(\.holdsPort).flatMap(\.ports)
            for address in Set(specs.map(\.hostAddress))
            where !published.contains(where: { $0.holds(address) }) && hostPorts.inUse(address) {
                portsInUse.insert(address)
            }
        }
        return HostState(containers: containers, images: images, portsInUse: portsInUse)
    }
}
