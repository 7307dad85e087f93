import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 13, Swarm: `platform: swarm` on a one-node swarm of a dockerd the test starts (its own
/// socket, data root and bridge; never `swarm init` on the shared engine), with `publish.mode:
/// host` (ingress needs IPVS, which these machines' kernel lacks).
@Suite(.timeLimit(.minutes(4)))
struct SwarmTests {
    @Test func createUpdateAndAFailedUpdateRolledBackThroughSwarm() async throws {
        try await EngineFixture.with { fixture in
            let own = try OwnEngine()
            do {
                try await own.start()
                for image in ["reconcile-fixture:v1", "reconcile-fixture:v2", "reconcile-fixture:unhealthy-500"] {
                    await own.load(image)
                }
                // Its own port for the swarm's API (2377 may be another swarm's on this machine).
                #expect(
                    await OwnEngine.shell(
                        "docker -H \(own.host) swarm init --advertise-addr \(own.address) "
                            + "--listen-addr \(own.address):\(try fixture.freePort()) >/dev/null") == 0)
                try await scenario(fixture, own: own)
            } catch {
                await own.remove()
                throw error
            }
            await own.remove()
        }
    }

    func scenario(_ fixture: EngineFixture, own: OwnEngine) async throws {
        let workspace = try Workspace()
        let environment = ["RECONCILE_STATE_DIR": workspace.root.appendingPathComponent("state").path]
        let port = try fixture.freePort()
        func write(image: String, _ extra: String = "", order: String = "stop-first") throws -> String {
            try workspace.write(
                "environments/staging.yml",
                """
                service: \(fixture.service)
                environment: staging
                image: \(image)
                pull: never
                port: \(port)
                container_port: 8080
                stop_timeout: 1s
                engine: \(own.host)
                platform: swarm
                publish: {mode: host}
                update: {parallelism: 1, delay: 0s, monitor: 1s, order: \(order)}
                health: {path: /health, startup: 1s, interval: 200ms, attempts: 5, timeout: 1s}
                \(extra)
                """)
        }
        func version() async throws -> String {
            try await fixture.get(port: port, path: "/health", within: .seconds(10)).1
        }

        // Combinations that can never converge on one node are refused before anything changes.
        let tooMany = try await Binary.launch(
            ["diff", try write(image: "reconcile-fixture:v1", "replicas: 2")], environment: environment)
        #expect(tooMany.code == 1, "\(tooMany.output)")
        #expect(tooMany.output.contains("replicas: 2 with publish.mode: host needs 2 nodes"), "\(tooMany.output)")
        let startFirst = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:v1", order: "start-first")],
            environment: environment)
        #expect(startFirst.code == 1, "\(startFirst.output)")
        #expect(startFirst.output.contains("update.order: start-first with publish.mode: host"), "\(startFirst.output)")

        // Tasks no node can take: Swarm waits forever; reconcile fails after 30 s and removes the
        // new service (nothing ran before it).
        let nowhere = try await Binary.launch(
            [
                "apply",
                try write(image: "reconcile-fixture:v1", "placement: {constraints: [\"node.labels.zone==mars\"]}"),
            ],
            environment: environment)
        #expect(nowhere.code == 3, "\(nowhere.output)")
        #expect(nowhere.output.contains("found no node to run on"), "\(nowhere.output)")

        // Create, then update: each gated through the published port.
        let file = try write(image: "reconcile-fixture:v1")
        let created = try await Binary.launch(["apply", file], environment: environment)
        #expect(created.code == 0, "\(created.output)")
        #expect(created.output.contains("create service \(fixture.service)-staging"), "\(created.output)")
        #expect(try await version().contains(#""version":"v1""#))
        let status = try await Binary.launch(["status", file], environment: environment)
        #expect(status.output.contains("swarm: 1/1 running"), "\(status.output)")
        let inSync = try await Binary.launch(["diff", file], environment: environment)
        #expect(inSync.code == 0, "\(inSync.output)")

        let updated = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:v2")], environment: environment)
        #expect(updated.code == 0, "\(updated.output)")
        #expect(try await version().contains(#""version":"v2""#))

        // Secrets are Swarm secrets (the default on Swarm): a file in each task, never a variable,
        // never printed; each value a secret of its own, removed once no spec of the service uses it.
        let name = "\(fixture.service)-staging"
        var withSecret = environment
        let values = (1...3).map { "tok\($0)-\(UUID().uuidString)" }
        func deploy(secret value: String) async throws -> (code: Int32, output: String) {
            withSecret["API_TOKEN"] = value
            return try await Binary.launch(
                ["apply", try write(image: "reconcile-fixture:v2", "secrets: [API_TOKEN]")], environment: withSecret)
        }
        func secrets() async -> [String] {
            await OwnEngine.output(
                "docker -H \(own.host) secret ls --filter label=io.reconcile.service=\(fixture.service) "
                    + "--format '{{.Name}}'"
            ).split(separator: "\n").map(String.init).sorted()
        }
        func mounted() async -> String {
            await OwnEngine.output(
                "docker -H \(own.host) exec $(docker -H \(own.host) ps -q --filter "
                    + "label=com.docker.swarm.service.name=\(name) | head -1) /bin/busybox cat /run/secrets/API_TOKEN")
        }
        var made: [[String]] = []
        for value in values {
            let run = try await deploy(secret: value)
            #expect(run.code == 0, "\(run.output)")
            #expect(run.output.contains("created Swarm secret \(name)-API_TOKEN-"), "\(run.output)")
            #expect(!run.output.contains(value), "\(run.output)")
            #expect(await mounted() == value)
            made.append(await secrets())
        }
        // The previous spec's secret stays (Swarm's rollback returns to it); older ones go.
        #expect(made.map(\.count) == [1, 2, 2], "\(made)")
        #expect(made.count == 3 && !made[2].contains(made[0].first ?? "-"), "\(made)")
        let inspected = await OwnEngine.output("docker -H \(own.host) service inspect \(name)")
        #expect(inspected.contains("API_TOKEN_FILE=/run/secrets/API_TOKEN"), "\(inspected)")
        #expect(!values.contains { inspected.contains($0) }, "\(inspected)")

        // A version that fails its health: rolled back through Swarm, v2 serves again, the failure
        // is named with the failing task's error; the same file is not tried again in a loop.
        // It has no secrets: the secret of the spec it rolls back to must still be there.
        let failed = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:unhealthy-500")], environment: environment)
        #expect(failed.code == 3, "\(failed.output)")
        #expect(failed.output.contains("the previous spec serves again (Swarm's rollback)"), "\(failed.output)")
        // Swarm's own healthcheck (the file's health policy) fails the task before reconcile's gate would.
        #expect(failed.output.contains("its healthcheck failed (GET :8080/health"), "\(failed.output)")
        #expect(try await version().contains(#""version":"v2""#))
        #expect(await mounted() == values[2])
        let again = try await Binary.launch(["apply", file], environment: environment)
        #expect(again.code == 6, "\(again.output)")

        // watch: a service changed by hand (`docker service update --image`) is put back from the
        // service's own event, not at the interval (an hour).
        let good = try write(image: "reconcile-fixture:v2", "secrets: [API_TOKEN]")
        let watch = try WatchTests.Watch(
            [good, "--interval", "1h"], environment: withSecret,
            log: workspace.root.appendingPathComponent("watch.log").path)
        try await watch.waitFor("engine reachable")
        try await Task.sleep(for: .seconds(2))
        #expect(
            await OwnEngine.shell(
                "docker -H \(own.host) service update --detach --image reconcile-fixture:v1 \(fixture.service)-staging "
                    + ">/dev/null") == 0)
        try await watch.waitFor("staging: drift-corrected (event", within: .seconds(90))
        #expect(try await version().contains(#""version":"v2""#))
        #expect(await watch.stop() == 0, "\(watch.output)")
    }
}
