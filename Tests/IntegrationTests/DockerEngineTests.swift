import Foundation
import ReconcileCore
import ReconcileDocker
import ReconcileTestSupport
import Testing

/// The Docker client against the real engine, one operation family per test.
struct DockerEngineTests {
    @Test func negotiatesAnAPIVersionTheEngineSpeaks() async throws {
        try await EngineFixture.with { fixture in
            let version = try await fixture.engine.version()
            #expect(!version.engine.isEmpty)
            #expect(version.os == "linux")
            let chosen = fixture.engine.apiVersion.split(separator: ".").compactMap { Int($0) }
            #expect(chosen.count == 2 && chosen[0] == 1 && (41...47).contains(chosen[1]))
        }
    }

    @Test func containerLifecycleFromCreateToRemove() async throws {
        try await EngineFixture.with { fixture in
            let port = try fixture.freePort()
            var spec = fixture.spec(port: port)
            spec.env = ["GREETING": "hello"]
            spec.memory = 64 << 20
            spec.cpus = 0.5
            var events: [EngineEvent] = []
            let stream = fixture.engine.events()
            let runID = fixture.runID
            let collector = Task {
                var seen: [EngineEvent] = []
                // Other tests run in parallel: keep only this run's containers.
                for try await event in stream where event.name?.hasPrefix(runID) == true {
                    seen.append(event)
                    if event.action == "destroy" { break }
                }
                return seen
            }
            try await Task.sleep(for: .milliseconds(200))

            let id = try await fixture.stage(DesiredEnvironment(spec: spec))
            let running = try #require(try await fixture.engine.inspectContainer(id))
            #expect(running.name == spec.containerName)
            #expect(running.state == .running)
            #expect(running.ports == [PublishedPort(hostIP: "0.0.0.0", hostPort: port, containerPort: 8080)])
            #expect(running.labels[Labels.fingerprint] == RuntimeConfig(spec: spec, secretValues: [:]).fingerprint)
            #expect(running.startedAt != nil)
            let image = try #require(try await fixture.engine.inspectImage("reconcile-fixture:v1"))
            #expect(running.imageID == image.id)

            let (status, body) = try await fixture.get(port: port, path: "/health")
            #expect(status == 200)
            #expect(body.contains(#""status":"healthy""#))

            let listed = try await fixture.containers()
            #expect(listed.map(\.id) == [id])
            #expect(listed.first?.ports.first?.hostPort == port)

            try await fixture.engine.renameContainer(id, to: spec.containerName + "-backup")
            let renamed = try await fixture.engine.inspectContainer(spec.containerName + "-backup")
            #expect(renamed?.id == id)

            let stopStarted = ContinuousClock.now
            try await fixture.engine.stopContainer(id, timeout: .seconds(2))
            // The fixture exits on SIGTERM; allow the 2s timeout plus slack for a loaded machine (6 s
            // was seen with every test running on 2 cores).
            #expect(ContinuousClock.now - stopStarted < .seconds(12))
            let stopped = try await fixture.engine.inspectContainer(id)
            #expect(stopped?.state == .exited)
            // Stopping a stopped container and starting it again are both fine (304 / 204).
            try await fixture.engine.stopContainer(id, timeout: .seconds(1))
            try await fixture.engine.startContainer(id)
            try await fixture.engine.startContainer(id)

            try await fixture.engine.removeContainer(id, force: true)
            let removed = try await fixture.engine.inspectContainer(id)
            #expect(removed == nil)
            try await fixture.engine.removeContainer(id, force: true)

            events = try await collector.value
            let actions = events.filter { $0.containerID == id }.map(\.action)
            #expect(Array(actions.prefix(3)) == ["create", "start", "rename"])
            #expect(actions.contains("die") && actions.last == "destroy")
        }
    }

    @Test func crashingContainerReportsExitCodeAndLogs() async throws {
        try await EngineFixture.with { fixture in
            var spec = fixture.spec(image: "reconcile-fixture:crash", port: try fixture.freePort())
            spec.restart = .no
            let id = try await fixture.stage(DesiredEnvironment(spec: spec))
            let exited = try await fixture.wait(for: id) { $0.state == .exited }
            #expect(exited.exitCode == 3)
            let logs = try await fixture.engine.logs(id, tail: 20)
            #expect(logs == "fatal: cannot connect to database\n")
        }
    }

    @Test func missingImageIsRefusedWithTheEnginesReason() async throws {
        try await EngineFixture.with { fixture in
            let spec = fixture.spec(image: "reconcile-fixture:does-not-exist", port: try fixture.freePort())
            await #expect(throws: EngineError.self) { try await fixture.stage(DesiredEnvironment(spec: spec)) }
            do {
                try await fixture.stage(DesiredEnvironment(spec: spec))
            } catch let error as EngineError {
                guard case .api(404, let message, _) = error else {
                    Issue.record("expected a 404, got \(error)")
                    return
                }
                #expect(message.contains("No such image"))
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test func takenPortIsRefusedWithTheEnginesReason() async throws {
        try await EngineFixture.with { fixture in
            let port = try fixture.freePort()
            try await fixture.foreign(name: "\(fixture.runID)-squatter", port: port)
            let spec = fixture.spec(port: port)
            do {
                try await fixture.stage(DesiredEnvironment(spec: spec))
                Issue.record("a second container started on a taken port")
            } catch let error as EngineError {
                #expect(error.description.contains("port is already allocated"))
                #expect(
                    error.description.hasSuffix("the host port is taken: stop what holds it or choose another port"))
            }
            try await fixture.removeServiceContainers()

            // A process outside the engine: the proxy cannot bind.
            let listener = try Listener()
            do {
                try await fixture.stage(DesiredEnvironment(spec: fixture.spec(port: listener.port)))
                Issue.record("a container started on a port a host process listens on")
            } catch let error as EngineError {
                #expect(error.description.contains("address already in use"), "\(error)")
                #expect(
                    error.description.hasSuffix("the host port is taken: stop what holds it or choose another port"))
            }
        }
    }

    @Test func pullOfAnUnreachableRegistryFails() async throws {
        try await EngineFixture.with { fixture in
            let started = ContinuousClock.now
            do {
                try await fixture.engine.pull("127.0.0.1:1/reconcile/nope:v1") { _ in }
                Issue.record("pull from a closed port succeeded")
            } catch let error as EngineError {
                guard case .pullFailed(let reference, let message, _) = error else {
                    Issue.record("expected pullFailed, got \(error)")
                    return
                }
                #expect(reference == "127.0.0.1:1/reconcile/nope:v1")
                #expect(message.contains("connection refused"))
            }
            // Refused at once; 20 s leaves room for a loaded machine, far from a client retrying for minutes.
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    @Test func missingContainerAndImageAreNil() async throws {
        try await EngineFixture.with { fixture in
            let container = try await fixture.engine.inspectContainer("\(fixture.runID)-nothing")
            let image = try await fixture.engine.inspectImage("reconcile-fixture:nothing")
            #expect(container == nil && image == nil)
        }
    }
}
