// swift-format-ignore-file: AlwaysUseLowerCamelCase

// Field names mirror the Docker Engine API wire format.
import Foundation
import ReconcileCore

/// The body of `POST /containers/create`, built from a `ContainerCreation` without any I/O.
struct CreateContainerBody: Encodable, Equatable {
    struct HealthcheckPart: Encodable, Equatable {
        var Test: [String]
        var Interval: Int64
        var Timeout: Int64
        var Retries: Int
        var StartPeriod: Int64
    }
    struct PortBindingPart: Encodable, Equatable {
        var HostIp: String
        var HostPort: String
    }
    struct RestartPolicyPart: Encodable, Equatable {
        var Name: String
        var MaximumRetryCount: Int
    }
    struct MountPart: Encodable, Equatable {
        var `Type` = "bind"
        var Source: String
        var Target: String
        var ReadOnly = true
    }
    struct HostConfigPart: Encodable, Equatable {
        var PortBindings: [String: [PortBindingPart]]
        var RestartPolicy: RestartPolicyPart
        var Memory: Int64?
        var NanoCpus: Int64?
        var Mounts: [MountPart]?
        var NetworkMode: String?
    }
    struct Empty: Encodable, Equatable {}

    var Image: String
    var Env: [String]
    var Cmd: [String]?
    var Labels: [String: String]
    var ExposedPorts: [String: Empty]?
    var StopTimeout: Int
    var Healthcheck: HealthcheckPart?
    var User: String?
    var HostConfig: HostConfigPart

    init(_ request: ContainerCreation) {
        Image = request.image
        Env = request.environment.map { "\($0.0)=\($0.1)" }
        Cmd = request.command
        Labels = request.labels
        ExposedPorts = request.port.map { ["\($0.containerPort)/tcp": Empty()] }
        // Docker takes whole seconds; round a fraction up so a stop is never cut shorter than asked.
        StopTimeout = request.stopTimeout.wholeSecondsRoundedUp
        User = request.user
        Healthcheck = request.healthcheck.map {
            HealthcheckPart(
                Test: $0.test, Interval: Self.nanoseconds($0.interval), Timeout: Self.nanoseconds($0.timeout),
                Retries: $0.retries, StartPeriod: Self.nanoseconds($0.startPeriod))
        }
        HostConfig = HostConfigPart(
            PortBindings: request.port.map {
                ["\($0.containerPort)/tcp": [PortBindingPart(HostIp: $0.hostIP, HostPort: String($0.hostPort))]]
            } ?? [:],
            RestartPolicy: RestartPolicyPart(Name: request.restart.rawValue, MaximumRetryCount: 0),
            Memory: request.memory, NanoCpus: request.cpus.map { Int64(saturating: ($0 * 1e9).rounded()) },
            Mounts: request.mounts.isEmpty
                ? nil : request.mounts.map { MountPart(Source: $0.source, Target: $0.target, ReadOnly: $0.readOnly) },
            NetworkMode: request.network)
    }

    /// Canonical JSON (sorted keys), as sent and as the golden tests compare it.
    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 { duration.nanoseconds }
}
