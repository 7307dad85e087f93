/// Reads what the engine runs, once for a whole set of environments.
public struct Observer: Sendable {
    public let engine: any ContainerEngine
    /// Checks host ports that no running container publishes; nil skips the check.
    public let hostPorts: (any HostPorts)?
    /// Asks blue-green proxies where they send requests; nil leaves routing unknown.
    public let proxies: (any ProxyRuntime)?

    public init(engine: any ContainerEngine, hostPorts: (any HostPorts)? = nil, proxies: (any ProxyRuntime)? = nil) {
        self.engine = engine
        self.hostPorts = hostPorts
        self.proxies = proxies
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
        let proxyImages = specs.filter { $0.strategy == .blueGreen }.map(\.proxy.image.description)
        for reference in Set(specs.map(\.image.description) + proxyImages).sorted() {
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
        var host = HostState(containers: containers, images: images, portsInUse: portsInUse)
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
