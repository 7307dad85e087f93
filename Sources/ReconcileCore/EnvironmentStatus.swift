import Foundation

/// What runs for one environment now: the active container and its backups.
public struct EnvironmentStatus: Sendable, Equatable {
    public var spec: EnvironmentSpec
    /// The container holding the environment's name, when there is one.
    public var active: ContainerSnapshot?
    /// The image the active container runs, when the host still has it.
    public var image: ImageSnapshot?
    /// Backups, newest first.
    public var backups: [ContainerSnapshot]
    /// The environment's blue-green proxy, when there is one.
    public var proxy: ContainerSnapshot?
    /// A Swarm service's tasks that should run, with the node each is on (hostname).
    public var tasks: [NodeTask]?

    public struct NodeTask: Sendable, Equatable {
        public var node: String
        public var task: TaskSnapshot
    }

    /// `2/3 running (web1: running, web2: running, web3: pending "no suitable node")`.
    public var tasksSummary: String? {
        guard let tasks else { return nil }
        return TaskSnapshot.summary(tasks.map { ($0.node, $0.task) }, replicas: spec.swarm.replicas)
    }

    public init(spec: EnvironmentSpec, active: ContainerSnapshot?, image: ImageSnapshot?, backups: [ContainerSnapshot])
    {
        self.spec = spec
        self.active = active
        self.image = image
        self.backups = backups
    }

    /// True when the active container is one reconcile created for this environment.
    public var isManaged: Bool {
        active?.isManaged(service: spec.service, environment: spec.environment) ?? false
    }

    /// Reads the status of each spec: one list call, then an inspect of each active container and its image.
    public static func read(_ specs: [EnvironmentSpec], engine: any ContainerEngine) async throws -> [EnvironmentStatus]
    {
        let containers = try await engine.containers()
        var result: [EnvironmentStatus] = []
        // One node list for every service of the read (nil: none asked for, or not a swarm manager).
        let nodes = specs.contains { $0.platform == .swarm } ? try await engine.swarmNodes() : nil
        for spec in specs {
            var active: ContainerSnapshot?
            var image: ImageSnapshot?
            if spec.platform == .swarm {
                result.append(try await service(spec, nodes: nodes, engine: engine))
                continue
            }
            if let summary = containers.first(where: { $0.name == spec.containerName }) {
                active = try await engine.inspectContainer(summary.id) ?? summary
                if let id = active?.imageID, !id.isEmpty { image = try await engine.inspectImage(id) }
            }
            var status = EnvironmentStatus(
                spec: spec, active: active, image: image, backups: containers.backups(of: spec))
            status.proxy = containers.first { $0.isProxy(of: spec) }
            result.append(status)
        }
        return result
    }

    /// A Swarm service's status: the service as the active "container", its tasks by node.
    static func service(_ spec: EnvironmentSpec, nodes: [SwarmNode]?, engine: any ContainerEngine) async throws
        -> EnvironmentStatus
    {
        guard let nodes, let service = try await engine.service(spec.containerName)
        else { return EnvironmentStatus(spec: spec, active: nil, image: nil, backups: []) }
        let wanted = try await engine.tasks(ofService: service.id).filter { $0.desiredState == "running" }
        let active = service.asContainer(tasks: wanted)
        let image = try await engine.inspectImage(service.image)
        var status = EnvironmentStatus(spec: spec, active: active, image: image, backups: [])
        status.tasks = wanted.map { NodeTask(node: TaskSnapshot.nodeName($0.node, nodes: nodes), task: $0) }
        return status
    }
}
