/// Reads what the engine runs, once for a whole set of environments.
public struct Observer: Sendable {
    public let engine: any ContainerEngine

    public init(engine: any ContainerEngine) { self.engine = engine }

    /// Lists every container and resolves each spec's image locally; changes nothing.
    public func observe(_ specs: [EnvironmentSpec]) async throws -> HostState {
        let containers = try await engine.containers()
        var images: [String: ImageSnapshot] = [:]
        for reference in Set(specs.map(\.image.description)).sorted() {
            images[reference] = try await engine.inspectImage(reference)
        }
        return HostState(containers: containers, images: images)
    }
}
