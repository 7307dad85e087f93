import Foundation
import ReconcileCore
import ReconcileDocker
import ReconcileSystem
import ReconcileTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A connection to the real Docker engine and ownership of everything a test creates there:
/// every container carries `io.reconcile.test=<run id>` and is removed when the test ends.
/// There is no skipping: without an engine these tests fail (`make test` starts one).
final class EngineFixture: Sendable {
    static let testLabel = "io.reconcile.test"

    let engine: DockerEngine
    let runID: String

    private init(engine: DockerEngine, runID: String) {
        self.engine = engine
        self.runID = runID
    }

    /// Runs `body` with a fresh fixture and removes what it created, whether the body passed or threw.
    static func with(_ body: (EngineFixture) async throws -> Void) async throws {
        let endpoint = try DockerEndpoint.from(environment: ProcessInfo.processInfo.environment)
        let engine: DockerEngine
        do {
            engine = try await DockerEngine.connect(endpoint)
        } catch {
            Issue.record("no Docker engine for the integration tests: \(error). Run `make test`, which starts one.")
            throw error
        }
        let fixture = EngineFixture(engine: engine, runID: "rt" + UUID().uuidString.prefix(8).lowercased())
        do {
            try await body(fixture)
        } catch {
            await fixture.cleanUp()
            throw error
        }
        await fixture.cleanUp()
    }

    /// The service name for this run: unique, so parallel tests and a demo never collide.
    var service: String { runID }

    /// A free TCP port chosen by the kernel, away from the demo's 8000/8001, and never one handed
    /// to another test of this run: the kernel may offer a port again as soon as it is closed, and
    /// two tests running at once then published the same port (seen in CI).
    func freePort() throws -> Int {
        for _ in 0..<100 {
            let listener = try Listener()
            defer { listener.close() }
            if Self.handedOut.withLock({ $0.insert(listener.port).inserted }) { return listener.port }
        }
        throw FixtureError("no free port the kernel offered was unused by this run")
    }

    /// Ports `freePort` returned in this test process.
    private static let handedOut = Locked(Set<Int>())

    /// Creates (and by default starts) the container apply would create for `desired`, labelled as this run's.
    @discardableResult
    func stage(
        _ desired: DesiredEnvironment, name: String? = nil, start: Bool = true,
        deployedAt: Date = Date()
    ) async throws -> String {
        var creation = ContainerCreation(desired: desired, name: name, deployedAt: deployedAt)
        creation.labels[Self.testLabel] = runID
        let id = try await engine.createContainer(creation)
        if start { try await engine.startContainer(id) }
        return id
    }

    /// Creates and starts a container reconcile does not manage (no io.reconcile.managed label).
    @discardableResult
    func foreign(name: String, port: Int) async throws -> String {
        let creation = ContainerCreation(
            name: name, image: "reconcile-fixture:v1", environment: [], command: nil,
            labels: [Self.testLabel: runID],
            port: PublishedPort(hostIP: "0.0.0.0", hostPort: port, containerPort: 8080),
            restart: .no, memory: nil, cpus: nil, stopTimeout: .seconds(1), healthcheck: nil)
        let id = try await engine.createContainer(creation)
        try await engine.startContainer(id)
        return id
    }

    /// A spec for this run on `port` with a fixture image (port 8080 inside).
    func spec(environment: String = "staging", image: String = "reconcile-fixture:v1", port: Int, file: String? = nil)
        -> EnvironmentSpec
    {
        var spec = Build.spec(service: service, environment: environment, image: image, port: port)
        spec.containerPort = 8080
        spec.stopTimeout = .seconds(2)
        if let file { spec.file = file }
        return spec
    }

    /// The YAML of `spec(...)`, for commands that read files.
    func yaml(environment: String = "staging", image: String = "reconcile-fixture:v1", port: Int, extra: String = "")
        -> String
    {
        """
        service: \(service)
        environment: \(environment)
        image: \(image)
        port: \(port)
        container_port: 8080
        stop_timeout: 2s
        \(extra)
        """
    }

    /// Runs `reconcile` in-process against this engine, checking host ports as the live program does.
    func run(_ arguments: [String], environment: [String: String] = [:]) async -> CommandRun {
        let endpoint = engine.endpoint
        return await runReconcile(arguments, environment: environment, now: Date(), hostPorts: SocketHostPorts()) {
            try await DockerEngine.connect(endpoint)
        }
    }

    /// Every container of this run, as the engine lists them.
    func containers() async throws -> [ContainerSnapshot] {
        try await engine.containers().filter { $0.labels[Self.testLabel] == runID }
    }

    /// Removes the containers apply created for this run's service (they carry no test label).
    func removeServiceContainers() async throws {
        for container in try await engine.containers() where container.name.hasPrefix(service) {
            try await engine.removeContainer(container.id, force: true)
        }
    }

    func cleanUp() async {
        if let mine = try? await containers() {
            for container in mine { try? await engine.removeContainer(container.id, force: true) }
        }
        await engine.shutdown()
    }

    /// GET http://127.0.0.1:<port><path>, retried for up to `within` while the server starts.
    func get(port: Int, path: String, within: Duration = .seconds(5)) async throws -> (Int, String) {
        let url = try #require(URL(string: "http://127.0.0.1:\(port)\(path)"))
        let deadline = ContinuousClock.now + within
        while true {
            do {
                let (data, response) = try await URLSession.shared.data(from: url)
                return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Polls `inspect` until `condition` holds, for at most `within`.
    func wait(for id: String, within: Duration = .seconds(10), until condition: (ContainerSnapshot) -> Bool)
        async throws -> ContainerSnapshot
    {
        let deadline = ContinuousClock.now + within
        while true {
            if let container = try await engine.inspectContainer(id), condition(container) { return container }
            if ContinuousClock.now > deadline {
                throw FixtureError("container \(id.prefix(12)) did not reach the state in time")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
