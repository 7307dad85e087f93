import Foundation

extension ContainerCreation {
    /// The container apply creates for an environment: its config, secret values and labels.
    ///
    /// - Parameters:
    ///   - name: the container's name; the active name unless a caller stages it under another.
    ///   - revision: the git revision of the environment file, when known.
    ///   - deployedAt: the deploy time, stored as a label (ISO 8601).
    public init(
        desired: DesiredEnvironment, name: String? = nil, revision: String? = nil,
        deployedAt: Date
    ) {
        let spec = desired.spec
        let config = desired.runtimeConfig
        var labels = [
            Labels.managed: "true",
            Labels.service: spec.service,
            Labels.environment: spec.environment,
            Labels.fingerprint: config.fingerprint,
            Labels.config: config.canonicalJSON,
            Labels.deployedAt: Self.timestamp(deployedAt),
        ]
        if let revision { labels[Labels.revision] = revision }
        let plain = spec.env.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let secret = spec.secrets.sorted().compactMap { key in desired.secretValues[key].map { (key, $0) } }
        self.init(
            name: name ?? spec.containerName, image: spec.image.description, environment: plain + secret,
            command: spec.command, labels: labels,
            port: PublishedPort(hostIP: spec.bind, hostPort: spec.port, containerPort: spec.containerPort),
            restart: spec.restart, memory: spec.memory, cpus: spec.cpus, stopTimeout: spec.stopTimeout,
            healthcheck: spec.dockerHealthcheck)
    }

    /// UTC, second precision, sortable as text: `2026-11-26T18:00:00Z`.
    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
