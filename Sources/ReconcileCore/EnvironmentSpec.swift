/// The desired state of one environment, as read from its YAML file with every default resolved.
///
/// A value of this type has passed validation: ports are in range, durations are positive and
/// names are usable as Docker container names.
public struct EnvironmentSpec: Sendable, Equatable {
    /// The file this spec was read from, as given on the command line.
    public var file: String
    /// sha256 of the file's bytes: the same content (a `git revert` of a later change) has the same
    /// digest, so re-applying it can run the image it ran before.
    public var contentDigest: String?
    public var service: String
    public var environment: String
    public var image: ImageReference
    public var pull: PullPolicy = .missing
    public var port: Int
    public var containerPort: Int = 8000
    public var bind: String = "0.0.0.0"
    public var env: [String: String] = [:]
    public var secrets: [String] = []
    public var secretsFile: String?
    public var secretsMode: SecretsMode = .env
    public var command: [String]?
    public var restart: RestartPolicy = .unlessStopped
    public var memory: Int64?
    public var cpus: Double?
    public var stopTimeout: Duration = .seconds(10)
    public var dockerHealthcheck: DockerHealthcheck?
    /// True when `dockerHealthcheck` is a Swarm service's check made from `health` (the file has no
    /// `docker_healthcheck`); plans then name it by the health path, not by its shell script.
    public var healthcheckFromPolicy = false
    public var health = HealthPolicy()
    public var smoke: [SmokeCheck] = []
    public var performance: PerformanceCheck?
    public var backups: Int = 3
    public var approval: Approval = .none
    /// How a new version replaces the running one.
    public var strategy: DeployStrategy = .stopFirst
    /// The managed proxy of `strategy: blue-green` (its defaults when the file names none).
    public var proxy = ProxySettings()
    /// Where deploy results are sent (`notify.webhook`), when anywhere. May hold a token: never
    /// print it whole (`WebhookURL.redacted`).
    public var webhook: String?
    /// The engine it runs on (`engine:`); nil for the one the docker CLI would use.
    public var engine: EngineTarget?
    /// Where a remote engine's published ports are reached, once its address is known (the
    /// `tcp://` or `ssh://` host, also through a context); nil on the local engine.
    public var engineAddress: String?
    /// One container, or a Swarm service (`platform: swarm`) with `swarm`'s settings.
    public var platform: Platform = .container
    public var swarm = SwarmSettings()

    public init(file: String, service: String, environment: String, image: ImageReference, port: Int) {
        self.file = file
        self.service = service
        self.environment = environment
        self.image = image
        self.port = port
    }

    /// The name of the active container: `<service>-<environment>`.
    public var containerName: String { "\(service)-\(environment)" }

    /// The host address health checks reach the container on: `bind`, or for a wildcard bind
    /// loopback (the remote engine's address when it runs elsewhere).
    public var probeHost: String {
        guard bind == "0.0.0.0" || bind == "::" else { return bind }
        return engineAddress ?? "127.0.0.1"
    }
}

/// How apply replaces a running version.
public enum DeployStrategy: String, Sendable, CaseIterable, Codable {
    /// Stop the old version, start the new one on the same port (the seed's sequence).
    case stopFirst = "stop-first"
    /// Start the new version beside the old one behind a managed proxy that owns the port, and
    /// switch the proxy once the new one passed its gate.
    case blueGreen = "blue-green"
}

/// The managed proxy's settings (`proxy:` in the file).
public struct ProxySettings: Sendable, Equatable {
    /// The proxy container's image: HAProxy, configured at `/usr/local/etc/haproxy/haproxy.cfg`.
    public var image = ImageReference(repository: "haproxy", tag: "2.8")
    /// How long in-flight requests may finish on the old version after the switch.
    public var drainTimeout: Duration = .seconds(30)

    public init() {}
}

/// When to pull the image before a deploy.
public enum PullPolicy: String, Sendable, CaseIterable, Codable {
    case always, missing, never
}

/// The container's restart policy, as Docker names it.
public enum RestartPolicy: String, Sendable, CaseIterable, Codable {
    case no, always
    case unlessStopped = "unless-stopped"
    case onFailure = "on-failure"
}

/// Whether applying changes needs an explicit approval (`--approve`).
public enum Approval: String, Sendable, CaseIterable, Codable {
    case none, required
}

/// The container's own Docker HEALTHCHECK.
public struct DockerHealthcheck: Sendable, Equatable {
    public var test: [String]
    public var interval: Duration = .seconds(30)
    public var timeout: Duration = .seconds(10)
    public var retries: Int = 3
    public var startPeriod: Duration = .seconds(5)

    public init(test: [String]) { self.test = test }
}

/// The deploy gate: how a new container proves it is healthy.
public struct HealthPolicy: Sendable, Equatable {
    public var path = "/health"
    public var expectStatus = 200
    /// Fields of the JSON body that must match, compared as text (`status: healthy`).
    public var expectJSON: [String: String] = [:]
    /// Failures before this much time has passed since start do not count.
    public var startup: Duration = .seconds(15)
    public var interval: Duration = .seconds(5)
    public var attempts = 10
    public var timeout: Duration = .seconds(2)

    public init() {}

    /// The longest the gate waits for a first success: `startup + attempts × interval`.
    public var budget: Duration { startup + interval * attempts }
}

/// One smoke check: a path that must answer the expected status after health passes.
public struct SmokeCheck: Sendable, Equatable {
    public var path: String
    public var expectStatus = 200

    public init(path: String, expectStatus: Int = 200) {
        self.path = path
        self.expectStatus = expectStatus
    }
}

/// A latency check: `requests` sequential requests, each answering `expectStatus`, whose 95th
/// percentile must stay under `maxP95`.
public struct PerformanceCheck: Sendable, Equatable {
    public var path = "/health"
    public var expectStatus = 200
    public var requests = 20
    public var maxP95: Duration = .milliseconds(500)

    public init() {}
}
