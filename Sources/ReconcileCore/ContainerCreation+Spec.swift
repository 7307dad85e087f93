import Foundation

extension ContainerCreation {
    /// The container apply creates for an environment: its config, secret values and labels.
    ///
    /// - Parameters:
    ///   - name: the container's name; the active name unless a caller stages it under another.
    ///   - revision: the environment file's revision in git, when known.
    ///   - deployedAt: the deploy time, stored as a label (ISO 8601).
    ///   - secretFolder: with `secrets_mode: file`, the files `writeSecretFiles` made: each secret
    ///     is mounted from there and named in `<NAME>_FILE` instead of being a variable.
    public init(
        desired: DesiredEnvironment, name: String? = nil, revision: FileRevision? = nil,
        deployedAt: Date, secretFolder: SecretFolder? = nil
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
        if let commit = revision?.commit { labels[Labels.revision] = commit }
        if revision?.dirty == true { labels[Labels.dirty] = "true" }
        if let digest = spec.contentDigest { labels[Labels.contentDigest] = digest }
        let plain = spec.env.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var secret: [(String, String)] = []
        var mounts: [FileMount] = []
        if spec.platform == .swarm && spec.secretsMode == .file {
            // Swarm secrets: the strategy makes them and adds their mounts; the files are Swarm's.
            secret = spec.secrets.sorted().map { ("\($0)_FILE", SecretFolder.target($0)) }
        } else if let secretFolder {
            labels[Labels.secretFolder] = secretFolder.path
            for name in spec.secrets.sorted() {
                guard let file = secretFolder.files[name] else { continue }
                secret.append(("\(name)_FILE", SecretFolder.target(name)))
                mounts.append(FileMount(source: file, target: SecretFolder.target(name)))
            }
        } else {
            secret = spec.secrets.sorted().compactMap { key in desired.secretValues[key].map { (key, $0) } }
        }
        self.init(
            name: name ?? spec.containerName, image: desired.imageKey, environment: plain + secret,
            command: spec.command, labels: labels,
            port: PublishedPort(hostIP: spec.bind, hostPort: spec.port, containerPort: spec.containerPort),
            restart: spec.restart, memory: spec.memory, cpus: spec.cpus, stopTimeout: spec.stopTimeout,
            healthcheck: spec.dockerHealthcheck)
        self.mounts = mounts
        if spec.strategy == .blueGreen {
            // Behind the proxy: reachable on the environment's network only.
            self.port = nil
            self.network = spec.networkName
        }
    }

    /// With `secrets_mode: file`, writes the secret values to files for `container` (nil otherwise).
    public static func writeSecretFiles(
        _ desired: DesiredEnvironment, to store: (any SecretFileStore)?, container: String, user: String?
    ) throws -> SecretFolder? {
        let spec = desired.spec
        guard spec.secretsMode == .file, !spec.secrets.isEmpty else { return nil }
        guard let store else { throw StateError("secrets_mode: file needs a folder for secret files; none is set up") }
        return try store.place(desired.secretValues, for: container, user: user)
    }

    /// Writes the secret files of an existing container again when its folder is gone (a reboot
    /// empties tmpfs); the values are the file's, which match the container (its fingerprint does).
    public static func restoreSecretFiles(
        _ desired: DesiredEnvironment, of container: ContainerSnapshot, to store: (any SecretFileStore)?,
        user: String?
    ) throws {
        guard let folder = container.labels[Labels.secretFolder], let store, !store.exists(folder) else { return }
        try store.restore(desired.secretValues, in: folder, user: user)
    }

    /// UTC, second precision, sortable as text: `2026-11-26T18:00:00Z`.
    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// Text that may hold secret values (a container's log lines), with each value hidden.
public struct Redactions: Sendable {
    private let values: [String]

    public init() { values = [] }

    init(values: [String]) {
        // The longest first, so that a value inside another is not left half shown.
        self.values = Set(values).filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret value in it replaced by `[secret]`.
    public func apply(_ text: String) -> String {
        values.reduce(text) { shown, value in shown.replacingOccurrences(of: value, with: "[secret]") }
    }
}

extension DesiredEnvironment {
    /// What hides this environment's secret values in text shown or stored.
    public var redactions: Redactions { Redactions(values: Array(secretValues.values)) }
}

extension SwarmSecretVersion {
    /// The version of each of the environment's secrets, or the names of those whose value is not
    /// known (not set in the environment or `secrets_file`).
    public static func of(_ desired: DesiredEnvironment) -> (versions: [SwarmSecretVersion], missing: [String]) {
        let spec = desired.spec
        var versions: [SwarmSecretVersion] = []
        var missing: [String] = []
        let fingerprints = desired.runtimeConfig.secrets
        for target in spec.secrets.sorted() {
            guard let fingerprint = fingerprints[target], fingerprint.hasPrefix("hmac:"),
                let value = desired.secretValues[target]
            else {
                missing.append(target)
                continue
            }
            let version = String(fingerprint.dropFirst("hmac:".count))
            // Swarm allows 64 characters; the fingerprint and labels identify it, the rest is for people.
            var base = String("\(spec.containerName)-\(target)".prefix(64 - 1 - version.count))
            while let last = base.last, !(last.isLetter || last.isNumber) { base.removeLast() }
            versions.append(
                SwarmSecretVersion(
                    target: target, name: "\(base)-\(version)",
                    labels: Self.labels(of: spec).merging([Labels.secretName: target, Labels.secretVersion: version]) {
                        $1
                    }, value: value))
        }
        return (versions, missing)
    }
}
