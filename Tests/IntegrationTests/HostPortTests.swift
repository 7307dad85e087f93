import Foundation
import ReconcileCore
import ReconcileSystem
import ReconcileTestSupport
import Testing

/// A process on the host (not a container) listening on a port, as a stray dev server would.
/// Close-on-exec, or the processes other tests spawn meanwhile would keep it listening.
final class Listener {
    let port: Int
    private var descriptor: Int32

    init() throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = INADDR_ANY
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let descriptor = descriptor
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 8) == 0
                    && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard descriptor >= 0, listening else { throw FixtureError("cannot listen on a free port") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { close() }
}

/// A host port held by a process outside the engine is refused at plan time, before the running
/// version is touched, rather than failing at `docker start` after it was stopped.
@Suite(.timeLimit(.minutes(2)))
struct HostPortTests {
    @Test func bindingFindsAListenerAndNothingElse() throws {
        let ports = SocketHostPorts()
        let listener = try Listener()
        #expect(ports.inUse(HostAddress(bind: "0.0.0.0", port: listener.port)))
        #expect(ports.inUse(HostAddress(bind: "127.0.0.1", port: listener.port)))
        // An address that is not on this host: the check cannot tell, so it does not refuse.
        #expect(!ports.inUse(HostAddress(bind: "203.0.113.9", port: listener.port)))
        #expect(!ports.inUse(HostAddress(bind: "0.0.0.0", port: 0)))
        listener.close()
        #expect(!ports.inUse(HostAddress(bind: "0.0.0.0", port: listener.port)))
        #expect(!ports.inUse(HostAddress(bind: "127.0.0.1", port: listener.port)))
    }

    @Test func aPortHeldByAHostProcessIsRefusedAndTheRunningVersionKeepsServing() async throws {
        try await ApplyIntegrationTests().scene { scene in
            _ = try scene.write(image: "v1")
            #expect(await scene.apply().code == 0)
            let before = try #require(try await scene.fixture.engine.inspectContainer(scene.name))

            // The file moves the environment to a port a host process listens on.
            let listener = try Listener()
            let file = try scene.workspace.write(
                "environments/staging.yml",
                scene.fixture.yaml(
                    image: "reconcile-fixture:v1", port: listener.port, extra: ApplyIntegrationTests.fastGate))
            let message = "host port \(listener.port) is in use on this host by a process that is not a container"
            let diff = await scene.fixture.run(["diff", file])
            #expect(diff.code == 1)
            #expect(diff.stdout.contains(message), "\(diff.stdout)")

            let refused = await scene.apply()
            #expect(refused.code == 1)
            #expect(refused.stdout.contains(message) || refused.stderr.contains(message), "\(refused.stderr)")
            let after = try #require(try await scene.fixture.engine.inspectContainer(scene.name))
            #expect(after.id == before.id)
            #expect(after.startedAt == before.startedAt)
            #expect(after.state == .running)
            #expect(try await scene.health().contains(#""version":"v1""#))
            #expect(try await scene.containers().count == 1, "no backup was made")

            // Once the process is gone, the same file applies.
            listener.close()
            let moved = await scene.apply()
            #expect(moved.code == 0, "\(moved.stdout)\n\(moved.stderr)")
            let (status, body) = try await scene.fixture.get(port: listener.port, path: "/health")
            #expect(status == 200 && body.contains(#""version":"v1""#))
        }
    }

    @Test func aFirstDeployOnAHeldPortCreatesNothing() async throws {
        try await ApplyIntegrationTests().scene { scene in
            let listener = try Listener()
            let file = try scene.workspace.write(
                "environments/staging.yml",
                scene.fixture.yaml(
                    image: "reconcile-fixture:v1", port: listener.port, extra: ApplyIntegrationTests.fastGate))
            let run = await scene.fixture.run(["apply", file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(run.code == 1)
            #expect(run.stderr.contains("refused: host port \(listener.port) is in use on this host"), "\(run.stderr)")
            #expect(try await scene.containers().isEmpty)
        }
    }
}
