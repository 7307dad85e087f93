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
    /// Swarm's counter that redeploys the tasks of an unchanged spec when it grows (`docker service
    /// update --force`); not from the file: set above the service's own to restart its tasks.
    public var forceUpdate: UInt64 = 0

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
        if order == .startFirst {
            // Measured on a two-node swarm: the new task of a slot is placed beside the old one,
            // on the node where the port is taken, whatever other node is free.
            return "update.order: start-first with publish.mode: host starts each new task beside the old one on its "
                + "node, where port \(port) is taken, so the new task cannot start. Use update.order: stop-first, "
                + "or publish.mode: ingress"
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
    /// The Swarm secrets its spec and its previous spec use (Swarm's rollback needs the latter's).
    public var secretIDs: Set<String> = []
    /// Its spec's `ForceUpdate` counter.
    public var forceUpdate: UInt64 = 0

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

    /// The same, exited when none of `tasks` that should run does: the service serves nothing.
    public func asContainer(tasks: [TaskSnapshot]) -> ContainerSnapshot {
        var container = asContainer
        if !tasks.contains(where: { $0.isRunning && $0.desiredState == "running" }) { container.state = .exited }
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
    /// The address the node has in the swarm (where its host-mode ports answer).
    public var address: String?
    /// True for the node of the engine reconcile talks to.
    public var isSelf = false

    public init(id: String, hostname: String, ready: Bool, active: Bool, address: String? = nil) {
        self.id = id
        self.hostname = hostname
        self.ready = ready
        self.active = active
        self.address = address
    }
}

/// A Swarm secret, without its value (the engine never gives it back).
public struct SwarmSecret: Sendable, Equatable {
    public var id: String
    public var name: String
    public var labels: [String: String]

    public init(id: String, name: String, labels: [String: String]) {
        self.id = id
        self.name = name
        self.labels = labels
    }
}

/// A Swarm secret a service's tasks see as the file `/run/secrets/<target>`.
public struct SwarmSecretMount: Sendable, Equatable {
    public var id: String
    public var name: String
    public var target: String

    public init(id: String, name: String, target: String) {
        self.id = id
        self.name = name
        self.target = target
    }
}

/// One value of one of the file's secrets, as the Swarm secret that holds it. Swarm secrets cannot
/// change, so each value is a secret of its own, named and labelled with the value's keyed
/// fingerprint (which reveals nothing without the host's key); a changed value is a new secret
/// and a changed service spec, and old ones go once no service spec (current or previous) uses them.
public struct SwarmSecretVersion: Sendable, Equatable, CustomStringConvertible {
    /// The secret's name in the file (`API_TOKEN`): the file `/run/secrets/API_TOKEN` in a task.
    public var target: String
    /// The Swarm secret's name: `<service>-<environment>-<NAME>-<fingerprint>`, at most 64 characters.
    public var name: String
    public var labels: [String: String]
    /// The value: never print it (`description` is the name).
    public var value: String

    public var description: String { name }

    /// The labels every Swarm secret of the environment carries.
    public static func labels(of spec: EnvironmentSpec) -> [String: String] {
        [Labels.managed: "true", Labels.service: spec.service, Labels.environment: spec.environment]
    }
}

extension DockerHealthcheck {
    /// A Swarm service's own healthcheck from the file's health policy (`platform: swarm` without
    /// `docker_healthcheck`), so that Swarm itself holds back a task that does not answer while it
    /// rolls the tasks: an HTTP GET of the health path inside the task with the first of curl,
    /// wget, python3 and busybox's nc the image has, which passes on any 2xx answer. An image with none
    /// of them passes it (reconcile's gate still checks through the published port); an image
    /// without `/bin/sh` needs `docker_healthcheck` (its own command, or `[NONE]`).
    public static func fromPolicy(_ health: HealthPolicy, containerPort: Int) -> DockerHealthcheck {
        let seconds: Int64 = max(1, min(health.timeout, .seconds(3600)).components.seconds)
        let url = shellQuoted("http://127.0.0.1:\(containerPort)\(health.path)")
        let script = [
            "u=\(url)",
            "if command -v curl >/dev/null 2>&1; then exec curl -fsS -o /dev/null -m \(seconds) \"$u\"; fi",
            // A static busybox's wget may crash resolving even an address: then the next way is tried.
            "if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T \(seconds) \"$u\"; r=$?; "
                + "[ $r -lt 128 ] && exit $r; fi",
            "if command -v python3 >/dev/null 2>&1; then exec python3 -c "
                + "'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=\(seconds))' \"$u\"; fi",
            "if command -v busybox >/dev/null 2>&1; then printf 'GET %s HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' "
                + "\(shellQuoted(health.path)) | busybox nc -w \(seconds) 127.0.0.1 \(containerPort) | busybox head -n 1 "
                + "| busybox grep -q '^HTTP/[0-9.]* 2'; exit $?; fi",
            "exit 0",
        ].joined(separator: "; ")
        var check = DockerHealthcheck(test: ["CMD-SHELL", script])
        // A check more often than each second costs the node more than it tells.
        check.interval = max(health.interval, .seconds(1))
        check.timeout = health.timeout
        check.retries = max(1, health.attempts)
        check.startPeriod = health.startup
        return check
    }

    /// `text` as one word for `sh`.
    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

extension TaskSnapshot {
    /// The tasks that should run, by node: `2/3 running (web1: running, web2: pending "no suitable node")`.
    public static func summary(_ tasks: [(node: String, task: TaskSnapshot)], replicas: Int) -> String {
        let running = tasks.filter(\.task.isRunning).count
        let each = tasks.map { item in
            "\(item.node): \(item.task.state)"
                + (item.task.isRunning || item.task.error == nil ? "" : " \"\(item.task.error ?? "")\"")
        }
        return "\(running)/\(replicas) running (\(each.joined(separator: ", ")))"
    }

    /// The same, naming each task's node by its host name.
    public static func summary(_ tasks: [TaskSnapshot], nodes: [SwarmNode], replicas: Int) -> String {
        summary(tasks.map { (nodeName($0.node, nodes: nodes), $0) }, replicas: replicas)
    }

    /// A node's host name, or a short id when the node is not known (a task not placed yet: `-`).
    public static func nodeName(_ id: String, nodes: [SwarmNode]) -> String {
        nodes.first { $0.id == id }?.hostname ?? (id.isEmpty ? "-" : String(id.prefix(12)))
    }
}
