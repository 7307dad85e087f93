/// The labels reconcile puts on every container it creates. A container without `managed` is
/// never touched.
public enum Labels {
    public static let managed = "io.reconcile.managed"
    public static let service = "io.reconcile.service"
    public static let environment = "io.reconcile.environment"
    /// sha256 of the normalised runtime configuration (secret values excluded).
    public static let fingerprint = "io.reconcile.fingerprint"
    /// The normalised runtime configuration as JSON, for field-level diffs.
    public static let config = "io.reconcile.config"
    /// The last git commit that changed the environment file when it was applied.
    public static let revision = "io.reconcile.revision"
    /// sha256 of the environment file's content it was made from.
    public static let contentDigest = "io.reconcile.content-digest"
    /// `true` when the file had changes not committed when it was applied.
    public static let dirty = "io.reconcile.dirty"
    /// With `secrets_mode: file`, the host folder of the container's secret files.
    public static let secretFolder = "io.reconcile.secret-folder"
    /// On a Swarm secret reconcile made: the name of the secret in the file, and its value's keyed
    /// fingerprint (each value is a Swarm secret of its own: they cannot change).
    public static let secretName = "io.reconcile.secret"
    public static let secretVersion = "io.reconcile.secret-version"
    /// When the container was deployed, ISO 8601.
    public static let deployedAt = "io.reconcile.deployed-at"
    /// On a Swarm service: the id of the image it was created with, as the manager resolved it.
    public static let serviceImageID = "io.reconcile.image-id"
    /// Swarm's own label on a task's container: the service it belongs to.
    public static let swarmService = "com.docker.swarm.service.name"
    /// What a managed container other than an app version is: `proxy` for the blue-green proxy.
    public static let role = "io.reconcile.role"
    public static let proxyRole = "proxy"
    /// sha256 of what the proxy container was made from (image, generated configuration, address).
    public static let proxyConfig = "io.reconcile.proxy-config"
}

extension ContainerSnapshot {
    /// True when reconcile created this container as a version of the given environment (its
    /// proxy is not one: see `isProxy(of:)`).
    public func isManaged(service: String, environment: String) -> Bool {
        labels[Labels.managed] == "true" && labels[Labels.service] == service
            && labels[Labels.environment] == environment && labels[Labels.role] == nil
    }

    public var isManaged: Bool { labels[Labels.managed] == "true" }
}
