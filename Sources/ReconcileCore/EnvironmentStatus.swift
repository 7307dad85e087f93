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
        for spec in specs {
            var active: ContainerSnapshot?
            var image: ImageSnapshot?
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
}
