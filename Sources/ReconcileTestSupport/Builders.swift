import Foundation
import ReconcileCore

/// Small constructors for tests.
public enum Build {
    /// A valid spec with the seed's defaults; adjust fields after.
    public static func spec(
        service: String = "app", environment: String = "staging", image: String = "acme/app:v1", port: Int = 18001
    ) -> EnvironmentSpec {
        let reference: ImageReference
        switch ImageReference.parse(image) {
        case .success(let parsed): reference = parsed
        case .failure: reference = ImageReference(repository: "invalid", tag: "invalid")
        }
        return EnvironmentSpec(
            file: "environments/\(environment).yml", service: service, environment: environment, image: reference,
            port: port)
    }

    /// The container apply would have created for `desired`, as the engine would list it.
    public static func container(
        _ desired: DesiredEnvironment, id: String = "c0ffee000001", imageID: String = "sha256:1111",
        state: ContainerState = .running, name: String? = nil,
        deployedAt: Date = Date(timeIntervalSince1970: 1_700_000_000)
    ) -> ContainerSnapshot {
        let creation = ContainerCreation(desired: desired, name: name, deployedAt: deployedAt)
        return ContainerSnapshot(
            id: id, name: creation.name, image: creation.image, imageID: imageID, state: state, labels: creation.labels,
            ports: state == .running ? creation.port.map { [$0] } ?? [] : [])
    }

    /// A container reconcile did not create.
    public static func foreign(name: String, port: Int? = nil, id: String = "f0f0f0f0f0f0") -> ContainerSnapshot {
        ContainerSnapshot(
            id: id, name: name, image: "nginx:latest", imageID: "sha256:9999", state: .running,
            ports: port.map { [PublishedPort(hostIP: "0.0.0.0", hostPort: $0, containerPort: 80)] } ?? [])
    }
}
