/// Where an environment runs: one container on an engine, or a Docker Swarm service.
public enum Platform: String, Sendable, CaseIterable, Codable {
    case container, swarm
}

/// The Swarm side of an environment (`platform: swarm`): replicas, how Swarm rolls an update,
/// where tasks may run and how the port is published.
public struct SwarmSettings: Sendable, Equatable {
    public enum Order: String, Sendable, CaseIterable {
        case stopFirst = "stop-first"
        case startFirst = "start-first"
    }
    public enum FailureAction: String, Sendable, CaseIterable {
        case rollback, pause
    }
    public enum PublishMode: String, Sendable, CaseIterable {
        case host, ingress
    }

    public var replicas = 1
    public var parallelism = 1
    public var delay: Duration = .zero
    public var order: Order = .stopFirst
    /// How long Swarm watches each updated task for failure.
    public var monitor: Duration = .seconds(5)
    public var failureAction: FailureAction = .rollback
    public var constraints: [String] = []
    public var publishMode: PublishMode = .ingress

    public init() {}

    /// The settings as one line, for the fingerprint and the plan.
    public var updateSummary: String {
        "parallelism=\(parallelism) delay=\(Quantities.format(delay)) order=\(order.rawValue) "
            + "monitor=\(Quantities.format(monitor)) failure_action=\(failureAction.rawValue)"
    }

    /// The longest a rolling update may take before reconcile calls it stuck (Swarm never fails a
    /// stuck update by itself): each batch its delay, its monitor and the task's start (the
    /// health budget), plus a margin.
    public func updateBound(health: HealthPolicy) -> Duration {
        let batches = (replicas + max(1, parallelism) - 1) / max(1, parallelism)
        return (delay + monitor + health.budget) * batches + .seconds(30)
    }

    /// Why these settings can never converge on a swarm of `nodes` eligible nodes, or nil.
    public func neverConverges(nodes: Int, port: Int) -> String? {
        guard publishMode == .host else { return nil }
        if replicas > nodes {
            return "replicas: \(replicas) with publish.mode: host needs \(replicas) nodes (each node publishes port "
                + "\(port) once), and the swarm has \(nodes) that can run tasks; lower replicas, add nodes, or use "
                + "publish.mode: ingress"
        }
        if order == .startFirst, replicas >= nodes {
            return "update.order: start-first with publish.mode: host starts each new task beside the old one on a "
                + "node where port \(port) is taken; with \(replicas) replicas on \(nodes) nodes no node is free. Use "
                + "update.order: stop-first, or fewer replicas than nodes"
        }
        return nil
    }
}

/// A Swarm service as reconcile reasons about it.
public struct ServiceSnapshot: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The version index a change must name (optimistic concurrency).
    public var version: UInt64
    public var labels: [String: String]
    public var image: String
    public var replicas: Int?
    /// `updating`, `paused`, `completed`, `rollback_started`, `rollback_paused`, `rollback_completed`.
    public var updateState: String?
    public var updateMessage: String?
    public var publishedPorts: [PublishedPort]
    /// What the service's spec says now (a `docker service update` by hand shows here, not in
    /// its labels).
    public var actual: ActualConfig?

    public init(
        id: String, name: String, version: UInt64, labels: [String: String], image: String, replicas: Int?,
        updateState: String? = nil, updateMessage: String? = nil, publishedPorts: [PublishedPort] = []
    ) {
        self.id = id
        self.name = name
        self.version = version
        self.labels = labels
        self.image = image
        self.replicas = replicas
        self.updateState = updateState
        self.updateMessage = updateMessage
        self.publishedPorts = publishedPorts
    }

    /// The service as a container for the planner: its name, labels (fingerprint, revision) and
    /// image, running (Swarm keeps its tasks running).
    public var asContainer: ContainerSnapshot {
        var container = ContainerSnapshot(
            id: id, name: name, image: image, imageID: labels[Labels.serviceImageID] ?? "", state: .running,
            labels: labels, ports: publishedPorts)
        container.isService = true
        container.actual = actual
        return container
    }
}

/// One task of a service.
public struct TaskSnapshot: Sendable, Equatable {
    public var id: String
    public var node: String
    public var slot: Int?
    /// `new`, `pending`, `assigned`, …, `running`, `complete`, `failed`, `shutdown`, `rejected`.
    public var state: String
    public var desiredState: String
    public var message: String
    public var error: String?
    public var image: String
    public var containerID: String?

    public init(
        id: String, node: String, slot: Int?, state: String, desiredState: String, message: String, error: String?,
        image: String, containerID: String?
    ) {
        self.id = id
        self.node = node
        self.slot = slot
        self.state = state
        self.desiredState = desiredState
        self.message = message
        self.error = error
        self.image = image
        self.containerID = containerID
    }

    public var isRunning: Bool { state == "running" && desiredState == "running" }
}

/// A node of the swarm.
public struct SwarmNode: Sendable, Equatable {
    public var id: String
    public var hostname: String
    public var ready: Bool
    public var active: Bool

    public init(id: String, hostname: String, ready: Bool, active: Bool) {
        self.id = id
        self.hostname = hostname
        self.ready = ready
        self.active = active
    }
}
