import Foundation
import ReconcileCore
import ReconcileSystem
import ReconcileTestSupport
import Testing

/// `strategy: blue-green` against the real engine, with the proxy image the fixture script builds
/// from Debian's haproxy, and clients that keep sending requests while deploys run.
@Suite(.timeLimit(.minutes(3)))
struct BlueGreenTests {
    static let proxy = "proxy: {image: reconcile-proxy:2.6, drain_timeout: 10s}"

    struct Scene {
        let fixture: EngineFixture
        let workspace: Workspace
        let port: Int
        let state: String

        var file: String { "\(workspace.environments)/staging.yml" }
        var name: String { "\(fixture.service)-staging" }

        /// Writes the environment at `image` (a fixture tag), blue-green unless `stopFirst`.
        func write(_ image: String, stopFirst: Bool = false, gate: String = ApplyIntegrationTests.fastGate) throws {
            let strategy = stopFirst ? "" : "strategy: blue-green\n\(BlueGreenTests.proxy)\n"
            _ = try workspace.write(
                "environments/staging.yml",
                fixture.yaml(image: "reconcile-fixture:\(image)", port: port, extra: strategy + gate))
        }

        func apply(_ arguments: [String] = ["apply"]) async -> CommandRun {
            await fixture.run(arguments + [file], environment: ["RECONCILE_STATE_DIR": state])
        }

        func health() async throws -> String { try await fixture.get(port: port, path: "/health").1 }

        func mine() async throws -> [ContainerSnapshot] {
            try await fixture.engine.containers().filter { $0.name.hasPrefix(name) }
        }

        /// Where the proxy sends requests, from its admin socket.
        func routing() async throws -> ProxyRouting {
            try await ProxyFolders(stateDirectory: state).routing("\(name)-proxy")
        }

        /// The live container's address on the environment's network.
        func liveAddress() async throws -> String {
            let live = try #require(try await fixture.engine.inspectContainer(name))
            return try #require(live.networks["\(name)-net"])
        }
    }

    func scene(_ body: (Scene) async throws -> Void) async throws {
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let scene = Scene(
                fixture: fixture, workspace: workspace, port: try fixture.freePort(),
                state: workspace.root.appendingPathComponent("state").path)
            do {
                try await body(scene)
            } catch {
                try? await fixture.removeServiceContainers()
                try? await fixture.engine.removeNetwork("\(scene.name)-net")
                throw error
            }
            try await fixture.removeServiceContainers()
            try await fixture.engine.removeNetwork("\(scene.name)-net")
        }
    }

    @Test func tenUpdatesLoseNoRequest() async throws {
        try await scene { scene in
            try scene.write("v1")
            let first = await scene.apply()
            #expect(first.code == 0, "\(first.stdout)\n\(first.stderr)")
            #expect(try await scene.health().contains(#""version":"v1""#))

            let fresh = LoadClient(port: scene.port, keepAlive: false)
            let kept = LoadClient(port: scene.port, keepAlive: true)
            fresh.start()
            kept.start()
            for round in 1...10 {
                try scene.write(round % 2 == 1 ? "v2" : "v1")
                let update = await scene.apply()
                #expect(update.code == 0, "round \(round): \(update.stdout)\n\(update.stderr)")
                #expect(update.stdout.contains("switch the proxy sends new requests to"), "\(update.stdout)")
            }
            try await Task.sleep(for: .milliseconds(200))
            let (freshReport, keptReport) = (fresh.stop(), kept.stop())
            #expect(freshReport.failed == 0, "new connections: \(freshReport)")
            #expect(keptReport.failed == 0, "keep-alive: \(keptReport)")
            #expect(freshReport.ok > 50 && keptReport.ok > 50, "\(freshReport) / \(keptReport)")
            #expect(keptReport.versions.keys.contains("v1") && keptReport.versions.keys.contains("v2"))

            // One live version, the proxy settled on it, backups stopped and pruned to `backups`.
            let mine = try await scene.mine()
            #expect(mine.filter { $0.state == .running }.map(\.name).sorted() == [scene.name, "\(scene.name)-proxy"])
            #expect(mine.filter { $0.name.contains("-backup-") }.count == 3)
            #expect(try await scene.routing().settled(on: try await scene.liveAddress()))
            #expect(try await scene.health().contains(#""version":"v1""#))
        }
    }

    @Test func aSlowRequestFinishesOnTheOldVersion() async throws {
        try await scene { scene in
            try scene.write("v1")
            #expect(await scene.apply().code == 0)
            let (fixture, port) = (scene.fixture, scene.port)
            let slow = Task { try await fixture.get(port: port, path: "/cgi-bin/slow", within: .seconds(1)) }
            try await Task.sleep(for: .milliseconds(500))
            try scene.write("v2")
            let update = await scene.apply()
            #expect(update.code == 0, "\(update.stdout)\n\(update.stderr)")
            let (status, body) = try await slow.value
            #expect(status == 200)
            #expect(body.contains("slow v1"), "\(body)")
            #expect(update.stdout.contains("finished its requests"), "\(update.stdout)")
            #expect(try await scene.health().contains(#""version":"v2""#))
        }
    }

    @Test(arguments: ["unhealthy-404", "crash", "smoke"])
    func aFailedGateNeverServesTheBadVersion(_ bad: String) async throws {
        try await scene { scene in
            try scene.write("v1")
            #expect(await scene.apply().code == 0)
            let before = try #require(try await scene.fixture.engine.inspectContainer(scene.name))

            let client = LoadClient(port: scene.port, keepAlive: false)
            client.start()
            if bad == "smoke" {
                try scene.write(
                    "v2",
                    gate: ApplyIntegrationTests.fastGate.replacingOccurrences(
                        of: "smoke: [{path: /items}, {path: /}]", with: "smoke: [{path: /missing}]"))
            } else {
                try scene.write(bad)
            }
            let update = await scene.apply()
            let report = client.stop()
            #expect(update.code == 3, "\(update.stdout)\n\(update.stderr)")
            #expect(update.stdout.contains("serves throughout"), "\(update.stdout)")
            #expect(report.failed == 0, "\(report)")
            #expect(report.versions.keys.sorted() == ["v1"], "\(report)")

            let after = try #require(try await scene.fixture.engine.inspectContainer(scene.name))
            #expect(after.id == before.id && after.state == .running && after.startedAt == before.startedAt)
            #expect(try await scene.mine().allSatisfy { !$0.name.hasSuffix("-candidate") })
        }
    }

    @Test func theProxyComesBackAfterARestartAndAfterARemoval() async throws {
        try await scene { scene in
            try scene.write("v1")
            #expect(await scene.apply().code == 0)
            let proxyName = "\(scene.name)-proxy"
            let proxy = try #require(try await scene.fixture.engine.inspectContainer(proxyName))

            // A restart (or a reboot) routes to the live version by its name.
            try await scene.fixture.engine.stopContainer(proxy.id, timeout: .seconds(2))
            try await scene.fixture.engine.startContainer(proxy.id)
            #expect(try await scene.health().contains(#""version":"v1""#))

            // Removed by hand: diff says so, the next apply creates it again.
            try await scene.fixture.engine.removeContainer(proxy.id, force: true)
            let diff = await scene.apply(["diff"])
            #expect(diff.code == 2)
            #expect(diff.stdout.contains("+ proxy: create"), "\(diff.stdout)")
            let again = await scene.apply()
            #expect(again.code == 0, "\(again.stdout)\n\(again.stderr)")
            #expect(again.stdout.contains("proxy created \(proxyName)"), "\(again.stdout)")
            #expect(try await scene.health().contains(#""version":"v1""#))

            // Routing changed by hand is put back.
            _ = try await ProxyFolders(stateDirectory: scene.state).send(proxyName, "set server app/live state maint")
            let drift = await scene.apply(["diff"])
            #expect(drift.stdout.contains("~ proxy: route"), "\(drift.stdout)")
            #expect(await scene.apply().code == 0)
            #expect(try await scene.routing().settled(on: try await scene.liveAddress()))
        }
    }

    @Test func movingBetweenStrategiesWorksBothWays() async throws {
        try await scene { scene in
            try scene.write("v1", stopFirst: true)
            #expect(await scene.apply().code == 0)

            try scene.write("v2")
            let diff = await scene.apply(["diff"])
            #expect(diff.stdout.contains("+ strategy: blue-green"), "\(diff.stdout)")
            #expect(diff.stdout.contains("the port moves from the container to the proxy"), "\(diff.stdout)")
            let toBlueGreen = await scene.apply()
            #expect(toBlueGreen.code == 0, "\(toBlueGreen.stdout)\n\(toBlueGreen.stderr)")
            #expect(try await scene.health().contains(#""version":"v2""#))
            let live = try #require(try await scene.fixture.engine.inspectContainer(scene.name))
            #expect(live.ports.isEmpty)

            try scene.write("v1", stopFirst: true)
            let toStopFirst = await scene.apply()
            #expect(toStopFirst.code == 0, "\(toStopFirst.stdout)\n\(toStopFirst.stderr)")
            #expect(toStopFirst.stdout.contains("proxy removed"), "\(toStopFirst.stdout)")
            #expect(try await scene.health().contains(#""version":"v1""#))
            #expect(try await scene.fixture.engine.inspectContainer("\(scene.name)-proxy") == nil)
            let back = try #require(try await scene.fixture.engine.inspectContainer(scene.name))
            #expect(back.ports.map(\.hostPort) == [scene.port])
        }
    }

    @Test(arguments: BlueGreenStrategy.Step.allCases)
    func killedAtAStepTheNextApplyConverges(_ step: BlueGreenStrategy.Step) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: CrashSafetyTests.binary))
        try await scene { scene in
            try scene.write("v1")
            #expect(await scene.apply().code == 0)
            try scene.write("v2")
            let pid = try Spawn.start(
                CrashSafetyTests.binary, ["apply", scene.file],
                environment: ["RECONCILE_STATE_DIR": scene.state, "RECONCILE_TEST_ABORT_AT": step.rawValue])
            #expect(await Spawn.finished(pid) == -1, "the apply was not killed at \(step.rawValue)")

            let recovery = await scene.apply()
            #expect(recovery.code == 0, "\(recovery.stdout)\n\(recovery.stderr)")
            let mine = try await scene.mine()
            let running = mine.filter { $0.state == .running }.map(\.name).sorted()
            #expect(running == [scene.name, "\(scene.name)-proxy"], "\(step.rawValue): \(running)")
            #expect(mine.contains { $0.image == "reconcile-fixture:v1" }, "the v1 backup was lost")
            #expect(!mine.contains { $0.name.hasSuffix("-candidate") })
            #expect(try await scene.routing().settled(on: try await scene.liveAddress()), "\(step.rawValue)")
            #expect(try await scene.health().contains(#""version":"v2""#))
            let again = await scene.apply()
            #expect(again.stdout.contains("in sync, nothing to do"), "\(again.stdout)")
        }
    }
}
