// swift-format-ignore-file: AlwaysUseLowerCamelCase

// Field names mirror the Docker Engine API wire format.
import Foundation
import ReconcileCore

/// Wire formats of the Engine API, decoded leniently: only the fields reconcile reads.
enum DockerDTO {
    struct Version: Decodable {
        var Version: String
        var ApiVersion: String
        var Os: String?
        var Arch: String?
    }

    struct ContainerSummary: Decodable {
        struct PortPart: Decodable {
            var IP: String?
            var PrivatePort: Int
            var PublicPort: Int?
        }
        var Id: String
        var Names: [String]?
        var Image: String?
        var ImageID: String?
        var State: String?
        var Labels: [String: String]?
        var Ports: [PortPart]?
        var Created: Int?
        var NetworkSettings: NetworksPart?

        var snapshot: ContainerSnapshot {
            let name = (Names?.first ?? Id).trimmingPrefix("/")
            let ports = (Ports ?? []).compactMap { port in
                port.PublicPort.map {
                    PublishedPort(hostIP: port.IP ?? "", hostPort: $0, containerPort: port.PrivatePort)
                }
            }
            var snapshot = ContainerSnapshot(
                id: Id, name: String(name), image: Image ?? "", imageID: ImageID ?? "",
                state: ContainerState(rawValue: State ?? "") ?? .dead, labels: Labels ?? [:],
                created: Created.map { Date(timeIntervalSince1970: TimeInterval($0)) }, ports: ports)
            snapshot.networks = NetworkSettings?.addresses ?? [:]
            return snapshot
        }
    }

    /// `NetworkSettings.Networks` of a list or an inspect: each network's IPv4 address.
    struct NetworksPart: Decodable {
        struct EndpointPart: Decodable { var IPAddress: String? }
        var Networks: [String: EndpointPart]?

        var addresses: [String: String] {
            (Networks ?? [:]).compactMapValues { $0.IPAddress.flatMap { $0.isEmpty ? nil : $0 } }
        }
    }

    struct Network: Decodable {
        var Id: String
        var Name: String
        var Labels: [String: String]?
    }

    struct ContainerInspect: Decodable {
        struct ConfigPart: Decodable {
            var Image: String?
            var Labels: [String: String]?
            var Env: [String]?
            var Cmd: [String]?
        }
        struct HostConfigPart: Decodable {
            struct RestartPart: Decodable { var Name: String? }
            var PortBindings: [String: [BindingPart]?]?
            var RestartPolicy: RestartPart?
            var Memory: Int64?
            var NanoCpus: Int64?
        }
        struct StatePart: Decodable {
            struct HealthPart: Decodable { var Status: String? }
            var Status: String?
            var ExitCode: Int?
            var StartedAt: String?
            var Health: HealthPart?
        }
        struct BindingPart: Decodable {
            var HostIp: String?
            var HostPort: String?
        }
        struct NetworkSettingsPart: Decodable {
            var Ports: [String: [BindingPart]?]?
            var Networks: [String: NetworksPart.EndpointPart]?
        }
        var Id: String
        var Name: String?
        var Image: String?
        var Created: String?
        var RestartCount: Int?
        var Config: ConfigPart?
        var HostConfig: HostConfigPart?
        var State: StatePart?
        var NetworkSettings: NetworkSettingsPart?

        var snapshot: ContainerSnapshot {
            var ports: [PublishedPort] = []
            for (key, bindings) in NetworkSettings?.Ports ?? [:] {
                let containerPort = Int(key.split(separator: "/").first ?? "") ?? 0
                for binding in bindings ?? [] {
                    if let hostPort = binding.HostPort.flatMap(Int.init) {
                        ports.append(
                            PublishedPort(
                                hostIP: binding.HostIp ?? "", hostPort: hostPort, containerPort: containerPort))
                    }
                }
            }
            var snapshot = ContainerSnapshot(
                id: Id, name: String((Name ?? Id).trimmingPrefix("/")), image: Config?.Image ?? "",
                imageID: Image ?? "",
                state: ContainerState(rawValue: State?.Status ?? "") ?? .dead, health: State?.Health?.Status,
                labels: Config?.Labels ?? [:], created: Created.flatMap(DockerDTO.date),
                startedAt: State?.StartedAt.flatMap(DockerDTO.date), exitCode: State?.ExitCode,
                ports: ports.sorted { ($0.hostPort, $0.hostIP) < ($1.hostPort, $1.hostIP) })
            snapshot.restartCount = RestartCount ?? 0
            snapshot.networks = NetworksPart(Networks: NetworkSettings?.Networks).addresses
            var bindings: [PublishedPort] = []
            for (key, list) in HostConfig?.PortBindings ?? [:] {
                let containerPort = Int(key.split(separator: "/").first ?? "") ?? 0
                for binding in list ?? [] {
                    if let hostPort = binding.HostPort.flatMap(Int.init) {
                        bindings.append(
                            PublishedPort(
                                hostIP: binding.HostIp ?? "", hostPort: hostPort, containerPort: containerPort))
                    }
                }
            }
            snapshot.actual = ActualConfig(
                image: Config?.Image ?? "", env: Config?.Env ?? [], command: Config?.Cmd,
                bindings: bindings.sorted { ($0.hostPort, $0.hostIP) < ($1.hostPort, $1.hostIP) },
                restart: HostConfig?.RestartPolicy?.Name ?? "", memory: HostConfig?.Memory ?? 0,
                nanoCPUs: HostConfig?.NanoCpus ?? 0)
            return snapshot
        }
    }

    struct ImageInspect: Decodable {
        struct ConfigPart: Decodable {
            var User: String?
            var ExposedPorts: [String: Empty]?
        }
        struct Empty: Decodable {}
        var Id: String
        var RepoTags: [String]?
        var RepoDigests: [String]?
        var Created: String?
        var Config: ConfigPart?

        var snapshot: ImageSnapshot {
            var image = ImageSnapshot(
                id: Id, repoDigests: RepoDigests ?? [], repoTags: RepoTags ?? [],
                created: Created.flatMap(DockerDTO.date))
            image.user = Config?.User.flatMap { $0.isEmpty ? nil : $0 }
            image.exposedPorts = (Config?.ExposedPorts ?? [:]).keys
                .compactMap { key in key.hasSuffix("/tcp") ? Int(key.dropLast(4)) : nil }.sorted()
            return image
        }
    }

    struct Created: Decodable { var Id: String }

    struct ProgressLine: Decodable {
        struct ErrorDetailPart: Decodable { var message: String? }
        struct DetailPart: Decodable {
            var current: Int64?
            var total: Int64?
        }
        var status: String?
        var id: String?
        var progressDetail: DetailPart?
        var error: String?
        var errorDetail: ErrorDetailPart?
    }

    struct Event: Decodable {
        struct ActorPart: Decodable {
            var ID: String?
            var Attributes: [String: String]?
        }
        var kind: String?
        var Action: String?
        var Actor: ActorPart?
        var time: Int?
        var timeNano: Int64?

        enum CodingKeys: String, CodingKey {
            case kind = "Type"
            case Action, Actor, time, timeNano
        }
    }

    /// Parses Docker's RFC 3339 times (nanosecond fractions); the zero time means "never".
    static func date(_ text: String) -> Date? {
        guard !text.hasPrefix("0001-") else { return nil }
        var trimmed = text
        if let dot = text.firstIndex(of: "."),
            let zone = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" })
        {
            let fraction = text[text.index(after: dot)..<zone].prefix(3)
            trimmed =
                String(text[..<dot]) + "." + fraction.padding(toLength: 3, withPad: "0", startingAt: 0) + text[zone...]
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions =
            trimmed.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter.date(from: trimmed)
    }
}
