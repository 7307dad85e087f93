import Foundation

/// What reconcile needs from a container engine. `DockerEngine` speaks the Docker Engine API;
/// `FakeEngine` (in ReconcileTestSupport) keeps containers in memory.
///
/// Methods throw `EngineError` with a reason a person can act on.
public protocol ContainerEngine: Sendable {
    /// Fails fast (about a second) when the engine cannot be reached.
    func ping() async throws
    func version() async throws -> EngineVersion
    /// Every container on the host, running or not, as the engine's list reports it.
    func containers() async throws -> [ContainerSnapshot]
    /// Full details of one container, or nil when there is none by that id or name.
    func inspectContainer(_ idOrName: String) async throws -> ContainerSnapshot?
    /// The local image a reference resolves to, or nil when the host does not have it.
    func inspectImage(_ reference: String) async throws -> ImageSnapshot?
    /// Pulls an image, reporting each progress line; fails if any line of the stream reports an error.
    func pull(_ reference: String, progress: @escaping @Sendable (PullProgress) -> Void) async throws
    /// Imports a root filesystem archive (tar) as an image, as `docker import` does.
    func importImage(_ archive: [UInt8], as reference: String) async throws
    /// Creates a container and returns its id.
    func createContainer(_ request: ContainerCreation) async throws -> String
    func startContainer(_ id: String) async throws
    func unpauseContainer(_ id: String) async throws
    func stopContainer(_ id: String, timeout: Duration) async throws
    func renameContainer(_ id: String, to name: String) async throws
    func removeContainer(_ id: String, force: Bool) async throws
    /// A network by name, or nil when there is none.
    func network(_ name: String) async throws -> NetworkSnapshot?
    /// Creates a bridge network with `labels`.
    func createNetwork(_ name: String, labels: [String: String]) async throws
    /// Removes a network; one that is gone already is not an error.
    func removeNetwork(_ name: String) async throws
    /// The last `tail` lines of a container's stdout and stderr.
    func logs(_ id: String, tail: Int) async throws -> String
    /// Container events (create, start, die, stop, kill, destroy, rename, update, health_status, …) and
    /// Swarm service events (update, remove) from now on;
    /// the stream ends (or throws) when the connection to the engine does.
    func events() -> AsyncThrowingStream<EngineEvent, Error>
    /// Releases connections; the engine must not be used afterwards.
    func shutdown() async
    /// The host name or address of an engine on another machine (where its published ports are
    /// reached); nil for the local engine.
    var remoteAddress: String? { get }

    // Swarm (`platform: swarm`); an engine that is not a swarm manager answers `swarmNodes` with nil.
    /// The swarm's nodes, or nil when this engine is not a swarm manager.
    func swarmNodes() async throws -> [SwarmNode]?
    /// A service by name, or nil when there is none.
    func service(_ name: String) async throws -> ServiceSnapshot?
    /// Creates a service running `request`'s container as Swarm tasks; returns its id.
    func createService(_ request: ContainerCreation, swarm: SwarmSettings) async throws -> String
    /// Replaces a service's spec (`version`: the index it has now).
    func updateService(_ id: String, version: UInt64, _ request: ContainerCreation, swarm: SwarmSettings) async throws
    /// Swarm's own rollback to the service's previous spec.
    func rollbackService(_ id: String, version: UInt64) async throws
    func removeService(_ id: String) async throws
    /// The service's tasks, the newest first.
    func tasks(ofService id: String) async throws -> [TaskSnapshot]
    /// The Swarm secrets that carry all of `labels`.
    func swarmSecrets(labeled labels: [String: String]) async throws -> [SwarmSecret]
    /// Creates a Swarm secret holding `value`; returns its id. The value is never shown.
    func createSwarmSecret(name: String, value: String, labels: [String: String]) async throws -> String
    /// Removes a Swarm secret; one that is gone already is not an error, one a service uses is.
    func removeSwarmSecret(_ id: String) async throws
}

extension ContainerEngine {
    public var remoteAddress: String? { nil }

    public func swarmNodes() async throws -> [SwarmNode]? { nil }
    public func service(_ name: String) async throws -> ServiceSnapshot? { nil }
    public func createService(_ request: ContainerCreation, swarm: SwarmSettings) async throws -> String {
        throw EngineError.api(status: 503, message: "this engine has no swarm", operation: "create service")
    }
    public func updateService(_ id: String, version: UInt64, _ request: ContainerCreation, swarm: SwarmSettings)
        async throws
    {
        throw EngineError.api(status: 503, message: "this engine has no swarm", operation: "update service")
    }
    public func rollbackService(_ id: String, version: UInt64) async throws {
        throw EngineError.api(status: 503, message: "this engine has no swarm", operation: "roll back service")
    }
    public func removeService(_ id: String) async throws {}
    public func tasks(ofService id: String) async throws -> [TaskSnapshot] { [] }
    public func swarmSecrets(labeled labels: [String: String]) async throws -> [SwarmSecret] { [] }
    public func createSwarmSecret(name: String, value: String, labels: [String: String]) async throws -> String {
        throw EngineError.api(status: 503, message: "this engine has no swarm", operation: "create secret \(name)")
    }
    public func removeSwarmSecret(_ id: String) async throws {}
}

/// The engine's own version and the API version both sides speak.
public struct EngineVersion: Sendable, Equatable, Codable {
    public var engine: String
    public var apiVersion: String
    public var os: String
    public var arch: String

    public init(engine: String, apiVersion: String, os: String, arch: String) {
        self.engine = engine
        self.apiVersion = apiVersion
        self.os = os
        self.arch = arch
    }
}

/// A container, reduced to what reconcile reasons about.
public struct ContainerSnapshot: Sendable, Equatable {
    public var id: String
    /// The name without Docker's leading slash.
    public var name: String
    /// The image as the container was created with (`acme/app:latest`).
    public var image: String
    /// The image id the container runs (`sha256:…`).
    public var imageID: String
    public var state: ContainerState
    /// Docker's health status (`healthy`, `unhealthy`, `starting`) when the container has a healthcheck.
    public var health: String?
    public var labels: [String: String]
    public var created: Date?
    public var startedAt: Date?
    public var exitCode: Int?
    /// How often Docker restarted it after an exit (inspect only; 0 from a list).
    public var restartCount: Int = 0
    /// What the engine says it was really created with (inspect only; nil from a list).
    public var actual: ActualConfig?
    public var ports: [PublishedPort]
    /// The container's IPv4 address on each network it is attached to, by network name.
    public var networks: [String: String] = [:]
    /// True for a Swarm service standing in for the environment's container (`platform: swarm`).
    public var isService = false

    public init(
        id: String, name: String, image: String, imageID: String, state: ContainerState, health: String? = nil,
        labels: [String: String] = [:], created: Date? = nil, startedAt: Date? = nil, exitCode: Int? = nil,
        ports: [PublishedPort] = []
    ) {
        self.id = id
        self.name = name
        self.image = image
        self.imageID = imageID
        self.state = state
        self.health = health
        self.labels = labels
        self.created = created
        self.startedAt = startedAt
        self.exitCode = exitCode
        self.ports = ports
    }

    public var shortID: String { String(id.prefix(12)) }
}

/// The parts of a container's configuration reconcile sets, as the engine reports them: to tell
/// a container changed by hand (labels copied onto another image or other settings) from the one
/// reconcile made.
public struct ActualConfig: Sendable, Equatable {
    public var image: String
    /// `NAME=value`, the image's own variables included.
    public var env: [String]
    public var command: [String]?
    public var bindings: [PublishedPort]
    public var restart: String
    public var memory: Int64
    public var nanoCPUs: Int64
    /// A Swarm service's replicas (nil for a container).
    public var replicas: Int?

    public init(
        image: String, env: [String], command: [String]?, bindings: [PublishedPort], restart: String, memory: Int64,
        nanoCPUs: Int64
    ) {
        self.image = image
        self.env = env
        self.command = command
        self.bindings = bindings
        self.restart = restart
        self.memory = memory
        self.nanoCPUs = nanoCPUs
    }
}

/// A container's lifecycle state, as Docker names it.
public enum ContainerState: String, Sendable, Equatable, Codable {
    case created, running, paused, restarting, removing, exited, dead
}

/// A host port a container publishes.
public struct PublishedPort: Sendable, Equatable, Codable {
    public var hostIP: String
    public var hostPort: Int
    public var containerPort: Int

    public init(hostIP: String, hostPort: Int, containerPort: Int) {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
    }
}

/// A network, reduced to what reconcile reasons about.
public struct NetworkSnapshot: Sendable, Equatable {
    public var id: String
    public var name: String
    public var labels: [String: String]

    public init(id: String, name: String, labels: [String: String]) {
        self.id = id
        self.name = name
        self.labels = labels
    }
}

/// A local image.
public struct ImageSnapshot: Sendable, Equatable {
    public var id: String
    /// `repo@sha256:…` digests the image is known by in registries; empty for a locally built image.
    public var repoDigests: [String]
    public var repoTags: [String]
    public var created: Date?
    /// The user the image runs as (`10001`, `app`, `10001:10001`), nil for root.
    public var user: String?
    /// The TCP ports the image declares with EXPOSE.
    public var exposedPorts: [Int] = []

    public init(id: String, repoDigests: [String] = [], repoTags: [String] = [], created: Date? = nil) {
        self.id = id
        self.repoDigests = repoDigests
        self.repoTags = repoTags
        self.created = created
    }

    /// The registry digest if the image has one, else its local id.
    public var digest: String {
        repoDigests.first.flatMap { $0.split(separator: "@").last.map(String.init) } ?? id
    }
}

/// One container event from the engine.
public struct EngineEvent: Sendable, Equatable {
    public var action: String
    public var containerID: String
    public var name: String?
    public var time: Date
    /// For `rename`: the name it had before.
    public var oldName: String?
    /// A Swarm service's event (`update`, `remove`), not a container's.
    public var isService = false

    public init(action: String, containerID: String, name: String?, time: Date) {
        self.action = action
        self.containerID = containerID
        self.name = name
        self.time = time
    }
}

/// Everything needed to create a container, independent of the engine's wire format.
public struct ContainerCreation: Sendable, Equatable {
    public var name: String
    public var image: String
    /// Variables in the order they are passed; secret values included, so never print this.
    public var environment: [(String, String)]
    public var command: [String]?
    public var labels: [String: String]
    /// The host port it publishes; nil for none.
    public var port: PublishedPort?
    public var restart: RestartPolicy
    public var memory: Int64?
    public var cpus: Double?
    public var stopTimeout: Duration
    public var healthcheck: DockerHealthcheck?
    /// Host files mounted into the container (secrets with `secrets_mode: file`, the proxy's folder).
    public var mounts: [FileMount] = []
    /// The user-defined network it joins instead of the default bridge; nil for the default.
    public var network: String?
    /// The user it runs as instead of the image's; nil for the image's.
    public var user: String?
    /// A Swarm service's secrets, each a file `/run/secrets/<target>` in its tasks.
    public var swarmSecrets: [SwarmSecretMount] = []

    public init(
        name: String, image: String, environment: [(String, String)], command: [String]?, labels: [String: String],
        port: PublishedPort?, restart: RestartPolicy, memory: Int64?, cpus: Double?, stopTimeout: Duration,
        healthcheck: DockerHealthcheck?
    ) {
        self.name = name
        self.image = image
        self.environment = environment
        self.command = command
        self.labels = labels
        self.port = port
        self.restart = restart
        self.memory = memory
        self.cpus = cpus
        self.stopTimeout = stopTimeout
        self.healthcheck = healthcheck
    }

    public static func == (lhs: ContainerCreation, rhs: ContainerCreation) -> Bool {
        lhs.name == rhs.name && lhs.image == rhs.image && lhs.environment.elementsEqual(rhs.environment, by: ==)
            && lhs.command == rhs.command && lhs.labels == rhs.labels && lhs.port == rhs.port
            && lhs.restart == rhs.restart && lhs.memory == rhs.memory && lhs.cpus == rhs.cpus
            && lhs.stopTimeout == rhs.stopTimeout && lhs.healthcheck == rhs.healthcheck && lhs.mounts == rhs.mounts
            && lhs.network == rhs.network && lhs.user == rhs.user && lhs.swarmSecrets == rhs.swarmSecrets
    }
}

/// A host file or folder mounted into a container, read-only unless said otherwise.
public struct FileMount: Sendable, Equatable {
    public var source: String
    public var target: String
    public var readOnly: Bool

    public init(source: String, target: String, readOnly: Bool = true) {
        self.source = source
        self.target = target
        self.readOnly = readOnly
    }
}
