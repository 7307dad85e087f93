// swift-format-ignore-file: AlwaysUseLowerCamelCase

// Field names mirror the Docker Engine API wire format.
import Foundation
import ReconcileCore

/// The body of `POST /services/create` and `/services/{id}/update`, built from the container
/// reconcile would create and the file's Swarm settings, without any I/O.
struct ServiceSpecBody: Encodable, Equatable {
    struct SecretPart: Encodable, Equatable {
        struct FilePart: Encodable, Equatable {
            var Name: String
            var UID = "0"
            var GID = "0"
            /// 0444: readable by the image's user whoever it is; the task's container is its only reader.
            var Mode: UInt32 = 0o444
        }
        var File: FilePart
        var SecretID: String
        var SecretName: String
    }
    struct ContainerSpecPart: Encodable, Equatable {
        var Image: String
        var Env: [String]
        var Args: [String]?
        var StopGracePeriod: Int64
        var Healthcheck: CreateContainerBody.HealthcheckPart?
        var Secrets: [SecretPart]?
    }
    struct ResourcesPart: Encodable, Equatable {
        struct Limits: Encodable, Equatable {
            var NanoCPUs: Int64?
            var MemoryBytes: Int64?
        }
        var Limits: Limits
    }
    struct RestartPart: Encodable, Equatable { var Condition = "any" }
    struct PlacementPart: Encodable, Equatable { var Constraints: [String] }
    struct TaskTemplatePart: Encodable, Equatable {
        var ContainerSpec: ContainerSpecPart
        var Resources: ResourcesPart
        var RestartPolicy = RestartPart()
        var Placement: PlacementPart?
        var ForceUpdate: UInt64?
    }
    struct ReplicatedPart: Encodable, Equatable { var Replicas: Int }
    struct ModePart: Encodable, Equatable { var Replicated: ReplicatedPart }
    struct UpdatePart: Encodable, Equatable {
        var Parallelism: Int
        var Delay: Int64
        var FailureAction: String
        var Monitor: Int64
        var Order: String
    }
    struct PortPart: Encodable, Equatable {
        var `Protocol` = "tcp"
        var TargetPort: Int
        var PublishedPort: Int
        var PublishMode: String
    }
    struct EndpointPart: Encodable, Equatable { var Ports: [PortPart] }

    var Name: String
    var Labels: [String: String]
    var TaskTemplate: TaskTemplatePart
    var Mode: ModePart
    var UpdateConfig: UpdatePart
    var RollbackConfig: UpdatePart
    var EndpointSpec: EndpointPart

    init(_ request: ContainerCreation, swarm: SwarmSettings) {
        Name = request.name
        Labels = request.labels
        let health = request.healthcheck.map {
            CreateContainerBody.HealthcheckPart(
                Test: $0.test, Interval: $0.interval.nanoseconds, Timeout: $0.timeout.nanoseconds, Retries: $0.retries,
                StartPeriod: $0.startPeriod.nanoseconds)
        }
        TaskTemplate = TaskTemplatePart(
            ContainerSpec: ContainerSpecPart(
                Image: request.image, Env: request.environment.map { "\($0.0)=\($0.1)" }, Args: request.command,
                StopGracePeriod: request.stopTimeout.nanoseconds, Healthcheck: health,
                Secrets: request.swarmSecrets.isEmpty
                    ? nil
                    : request.swarmSecrets.map {
                        SecretPart(File: .init(Name: $0.target), SecretID: $0.id, SecretName: $0.name)
                    }),
            Resources: ResourcesPart(
                Limits: .init(
                    NanoCPUs: request.cpus.map { Int64(saturating: ($0 * 1e9).rounded()) }, MemoryBytes: request.memory)
            ),
            Placement: swarm.constraints.isEmpty ? nil : PlacementPart(Constraints: swarm.constraints),
            ForceUpdate: swarm.forceUpdate == 0 ? nil : swarm.forceUpdate)
        Mode = ModePart(Replicated: ReplicatedPart(Replicas: swarm.replicas))
        let update = UpdatePart(
            Parallelism: swarm.parallelism, Delay: swarm.delay.nanoseconds,
            FailureAction: swarm.failureAction.rawValue, Monitor: swarm.monitor.nanoseconds, Order: swarm.order.rawValue
        )
        UpdateConfig = update
        // A rollback (Swarm's own, or reconcile's) goes back the same way; when it fails, it stops.
        RollbackConfig = update
        RollbackConfig.FailureAction = "pause"
        EndpointSpec = EndpointPart(
            Ports: request.port.map {
                [
                    PortPart(
                        TargetPort: $0.containerPort, PublishedPort: $0.hostPort,
                        PublishMode: swarm.publishMode.rawValue)
                ]
            } ?? [])
    }
}

extension DockerDTO {
    struct Service: Decodable {
        struct VersionPart: Decodable { var Index: UInt64 }
        struct SpecPart: Decodable {
            struct Template: Decodable {
                struct Container: Decodable {
                    struct Secret: Decodable { var SecretID: String? }
                    var Image: String?
                    var Env: [String]?
                    var Args: [String]?
                    var Secrets: [Secret]?
                }
                struct Resources: Decodable {
                    struct Limits: Decodable {
                        var NanoCPUs: Int64?
                        var MemoryBytes: Int64?
                    }
                    var Limits: Limits?
                }
                var ContainerSpec: Container?
                var Resources: Resources?
                var ForceUpdate: UInt64?
            }
            struct Mode: Decodable {
                struct Replicated: Decodable { var Replicas: Int? }
                var Replicated: Replicated?
            }
            var Name: String
            var Labels: [String: String]?
            var TaskTemplate: Template?
            var Mode: Mode?
        }
        struct UpdateStatusPart: Decodable {
            var State: String?
            var Message: String?
        }
        struct EndpointPart: Decodable {
            struct Port: Decodable {
                var TargetPort: Int?
                var PublishedPort: Int?
            }
            var Ports: [Port]?
        }
        var ID: String
        var Version: VersionPart
        var Spec: SpecPart
        var PreviousSpec: SpecPart?
        var UpdateStatus: UpdateStatusPart?
        var Endpoint: EndpointPart?

        var snapshot: ServiceSnapshot {
            let ports = (Endpoint?.Ports ?? []).compactMap { port -> PublishedPort? in
                guard let published = port.PublishedPort, let target = port.TargetPort else { return nil }
                return PublishedPort(hostIP: "", hostPort: published, containerPort: target)
            }
            let container = Spec.TaskTemplate?.ContainerSpec
            // The image as the spec names it, without the digest the CLI pins (`repo:tag@sha256:…`).
            let image = (container?.Image ?? "").split(separator: "@").first.map(String.init) ?? ""
            var service = ServiceSnapshot(
                id: ID, name: Spec.Name, version: Version.Index, labels: Spec.Labels ?? [:], image: image,
                replicas: Spec.Mode?.Replicated?.Replicas, updateState: UpdateStatus?.State,
                updateMessage: UpdateStatus?.Message, publishedPorts: ports)
            var actual = ActualConfig(
                image: image, env: container?.Env ?? [], command: container?.Args, bindings: ports, restart: "",
                memory: Spec.TaskTemplate?.Resources?.Limits?.MemoryBytes ?? 0,
                nanoCPUs: Spec.TaskTemplate?.Resources?.Limits?.NanoCPUs ?? 0)
            actual.replicas = Spec.Mode?.Replicated?.Replicas
            service.actual = actual
            service.forceUpdate = Spec.TaskTemplate?.ForceUpdate ?? 0
            service.secretIDs = Set(
                [Spec, PreviousSpec].compactMap { $0 }.flatMap { spec in
                    (spec.TaskTemplate?.ContainerSpec?.Secrets ?? []).compactMap(\.SecretID)
                })
            return service
        }
    }

    struct Task: Decodable {
        struct StatusPart: Decodable {
            struct ContainerStatusPart: Decodable { var ContainerID: String? }
            var State: String?
            var Message: String?
            var Err: String?
            var ContainerStatus: ContainerStatusPart?
        }
        struct SpecPart: Decodable {
            struct Container: Decodable { var Image: String? }
            var ContainerSpec: Container?
        }
        var ID: String
        var NodeID: String?
        var Slot: Int?
        var DesiredState: String?
        var Status: StatusPart?
        var Spec: SpecPart?
        var CreatedAt: String?

        var snapshot: TaskSnapshot {
            TaskSnapshot(
                id: ID, node: NodeID ?? "", slot: Slot, state: Status?.State ?? "", desiredState: DesiredState ?? "",
                message: Status?.Message ?? "", error: Status?.Err,
                image: (Spec?.ContainerSpec?.Image ?? "").split(separator: "@").first.map(String.init) ?? "",
                containerID: Status?.ContainerStatus?.ContainerID)
        }
    }

    struct Secret: Decodable {
        struct SpecPart: Decodable {
            var Name: String
            var Labels: [String: String]?
        }
        var ID: String
        var Spec: SpecPart
    }

    struct Node: Decodable {
        struct DescriptionPart: Decodable { var Hostname: String? }
        struct SpecPart: Decodable { var Availability: String? }
        struct StatusPart: Decodable {
            var State: String?
            var Addr: String?
        }
        var ID: String
        var Description: DescriptionPart?
        var Spec: SpecPart?
        var Status: StatusPart?
    }

    struct Info: Decodable {
        struct SwarmPart: Decodable {
            var LocalNodeState: String?
            var ControlAvailable: Bool?
            var NodeID: String?
        }
        var Swarm: SwarmPart?
    }
}

extension DockerEngine {
    public func swarmNodes() async throws -> [SwarmNode]? {
        let info = try Self.decode(
            DockerDTO.Info.self, try await send(.GET, "/info", operation: "report its swarm state"),
            operation: "GET /info")
        guard info.Swarm?.LocalNodeState == "active", info.Swarm?.ControlAvailable == true else { return nil }
        let response = try await send(.GET, "/nodes", operation: "list swarm nodes")
        return try Self.decode([DockerDTO.Node].self, response, operation: "GET /nodes").map { node in
            var seen = SwarmNode(
                id: node.ID, hostname: node.Description?.Hostname ?? node.ID, ready: node.Status?.State == "ready",
                active: node.Spec?.Availability == "active",
                address: node.Status?.Addr.flatMap { $0.isEmpty || $0 == "0.0.0.0" ? nil : $0 })
            seen.isSelf = node.ID == info.Swarm?.NodeID
            return seen
        }
    }

    public func service(_ name: String) async throws -> ServiceSnapshot? {
        let response = try await send(
            .GET, "/services/\(Self.encode(name))", operation: "inspect service \(name)", accept: [200, 404, 503])
        guard response.status == 200 else { return nil }
        let service = try Self.decode(DockerDTO.Service.self, response, operation: "inspect service")
        // The engine also finds a service by a prefix of its id: only the name or the whole id counts.
        return service.Spec.Name == name || service.ID == name ? service.snapshot : nil
    }

    /// The registry login for the service's image, as the docker CLI's `--with-registry-auth`
    /// sends it, so that every node can pull a private image.
    private func registryHeaders(_ image: String) async throws -> [(String, String)] {
        guard case .success(let parsed) = ImageReference.parse(image),
            let login = try await credentials?.credential(forRegistry: parsed.registry)
        else { return [] }
        return [("X-Registry-Auth", Self.registryAuth(login))]
    }

    public func createService(_ request: ContainerCreation, swarm: SwarmSettings) async throws -> String {
        struct Created: Decodable { var ID: String }
        let body = try JSONEncoder().encode(ServiceSpecBody(request, swarm: swarm))
        let response = try await send(
            .POST, "/services/create", body: body, operation: "create service \(request.name)", accept: [201],
            headers: try await registryHeaders(request.image))
        return try Self.decode(Created.self, response, operation: "create service").ID
    }

    public func updateService(_ id: String, version: UInt64, _ request: ContainerCreation, swarm: SwarmSettings)
        async throws
    {
        let body = try JSONEncoder().encode(ServiceSpecBody(request, swarm: swarm))
        _ = try await send(
            .POST, "/services/\(Self.encode(id))/update", query: [("version", String(version))], body: body,
            operation: "update service \(request.name)", headers: try await registryHeaders(request.image))
    }

    public func rollbackService(_ id: String, version: UInt64) async throws {
        // With rollback=previous the engine takes the previous spec, but the body must still be the
        // service's spec as it is (the engine checks it against the runtime), as `docker service
        // rollback` sends it.
        let response = try await send(.GET, "/services/\(Self.encode(id))", operation: "inspect service \(id)")
        guard let object = try? JSONSerialization.jsonObject(with: response.data) as? [String: Any],
            let spec = object["Spec"], let name = (spec as? [String: Any])?["Name"] as? String
        else {
            throw EngineError.malformedResponse(operation: "inspect service \(id)", detail: "no Spec in the answer")
        }
        let body = try JSONSerialization.data(withJSONObject: spec)
        _ = try await send(
            .POST, "/services/\(Self.encode(id))/update",
            query: [("version", String(version)), ("rollback", "previous")], body: body,
            operation: "roll back service \(name)")
    }

    public func removeService(_ id: String) async throws {
        _ = try await send(
            .DELETE, "/services/\(Self.encode(id))", operation: "remove service \(id)", accept: [200, 204, 404])
    }

    public func tasks(ofService id: String) async throws -> [TaskSnapshot] {
        let filters = try JSONSerialization.data(withJSONObject: ["service": [id]])
        let response = try await send(
            .GET, "/tasks", query: [("filters", String(decoding: filters, as: UTF8.self))], operation: "list tasks")
        let tasks = try Self.decode([DockerDTO.Task].self, response, operation: "GET /tasks")
        return tasks.sorted { ($0.CreatedAt ?? "") > ($1.CreatedAt ?? "") }.map(\.snapshot)
    }

    public func swarmSecrets(labeled labels: [String: String]) async throws -> [SwarmSecret] {
        let filters = try JSONSerialization.data(
            withJSONObject: ["label": labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }])
        let response = try await send(
            .GET, "/secrets", query: [("filters", String(decoding: filters, as: UTF8.self))],
            operation: "list swarm secrets")
        return try Self.decode([DockerDTO.Secret].self, response, operation: "GET /secrets").map {
            SwarmSecret(id: $0.ID, name: $0.Spec.Name, labels: $0.Spec.Labels ?? [:])
        }
    }

    public func createSwarmSecret(name: String, value: String, labels: [String: String]) async throws -> String {
        struct Body: Encodable {
            var Name: String
            var Labels: [String: String]
            var Data: String
        }
        struct Created: Decodable { var ID: String }
        let body = try JSONEncoder().encode(
            Body(Name: name, Labels: labels, Data: Data(value.utf8).base64EncodedString()))
        let response = try await send(
            .POST, "/secrets/create", body: body, operation: "create swarm secret \(name)", accept: [201])
        return try Self.decode(Created.self, response, operation: "create swarm secret").ID
    }

    public func removeSwarmSecret(_ id: String) async throws {
        _ = try await send(
            .DELETE, "/secrets/\(Self.encode(id))", operation: "remove swarm secret \(id)", accept: [200, 204, 404])
    }
}
