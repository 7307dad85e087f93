import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 13, Swarm: `platform: swarm` on a one-node swarm of a dockerd the test starts (its own
/// socket, data root and bridge; never `swarm init` on the shared engine), with `publish.mode:
/// host` (ingress needs IPVS, which these machines' kernel lacks).
/// The tests run one after the other: each swarm's manager binds its own addresses, but two
/// swarms starting at once on one machine double the load for no gain.
@Suite(.serialized, .timeLimit(.minutes(6)))
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

    /// The environment file both scenarios deploy: a host-mode port, updates one task at a time.
    static func file(
        _ workspace: Workspace, service: String, port: Int, engine: String, image: String, order: String,
        extra: String, attempts: Int = 5
    ) throws -> String {
        try workspace.write(
            "environments/staging.yml",
            """
            service: \(service)
            environment: staging
            image: \(image)
            pull: never
            port: \(port)
            container_port: 8080
            stop_timeout: 1s
            engine: \(engine)
            platform: swarm
            publish: {mode: host}
            update: {parallelism: 1, delay: 0s, monitor: 1s, order: \(order)}
            health: {path: /health, startup: 1s, interval: 200ms, attempts: \(attempts), timeout: 1s}
            \(extra)
            """)
    }

    func scenario(_ fixture: EngineFixture, own: OwnEngine) async throws {
        let workspace = try Workspace()
        let environment = ["RECONCILE_STATE_DIR": workspace.root.appendingPathComponent("state").path]
        let port = try fixture.freePort()
        func write(image: String, _ extra: String = "", order: String = "stop-first", attempts: Int = 5) throws
            -> String
        {
            try SwarmTests.file(
                workspace, service: fixture.service, port: port, engine: own.host, image: image, order: order,
                extra: extra, attempts: attempts)
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
        // The plan shows the service's tasks as the engine runs them (the PR comment, too).
        #expect(inSync.output.contains("  swarm: 1/1 running ("), "\(inSync.output)")

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

        // The live spec's secret removed by hand while a failing deploy has made it the previous
        // spec's only: Swarm's rollback cannot start that spec's tasks. reconcile says a person must
        // look (exit 4), and the next apply finds no task running, makes the secret again and
        // deploys the tasks again.
        let live = try #require(made[2].first { !made[1].contains($0) })
        var otherValue = withSecret
        otherValue["API_TOKEN"] = "tok4-\(UUID().uuidString)"
        let failing = try write(image: "reconcile-fixture:unhealthy-500", "secrets: [API_TOKEN]", attempts: 10)
        async let stuck = Binary.launch(["apply", failing], environment: otherValue)
        var removed = false
        for _ in 0..<40 where !removed {
            try await Task.sleep(for: .milliseconds(500))
            removed = await OwnEngine.shell("docker -H \(own.host) secret rm \(live) >/dev/null 2>&1") == 0
        }
        #expect(removed)
        let lost = try await stuck
        #expect(lost.code == 4, "\(lost.output)")
        let healed = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:v2", "secrets: [API_TOKEN]")], environment: withSecret)
        #expect(healed.code == 0, "\(healed.output)")
        #expect(healed.output.contains("no task runs; its tasks deployed again"), "\(healed.output)")
        #expect(try await version().contains(#""version":"v2""#))
        #expect(await mounted() == values[2])

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

    /// A two-node swarm: the test's dockerd as manager, and a worker: a second dockerd in a network
    /// namespace of its own (a veth pair to the host, no default route: pulls fail at once and the
    /// loaded images are used), under a host name of its own.
    @Test func twoNodesEachRunATaskAndEachIsGated() async throws {
        try await EngineFixture.with { fixture in
            let manager = try OwnEngine()
            let worker = try WorkerNode()
            do {
                try await manager.start()
                try await worker.start()
                for image in ["reconcile-fixture:v1", "reconcile-fixture:v2", "reconcile-fixture:unhealthy-500"] {
                    await manager.load(image)
                    await worker.load(image)
                }
                let swarmPort = try fixture.freePort()
                #expect(
                    await OwnEngine.shell(
                        "docker -H \(manager.host) swarm init --advertise-addr \(worker.hostSide) "
                            + "--listen-addr \(worker.hostSide):\(swarmPort) >/dev/null") == 0)
                let token = await OwnEngine.output("docker -H \(manager.host) swarm join-token -q worker")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(
                    await OwnEngine.shell(
                        "docker -H \(worker.host) swarm join --token \(token) --advertise-addr \(worker.address) "
                            + "--listen-addr \(worker.address):\(swarmPort) \(worker.hostSide):\(swarmPort) >/dev/null")
                        == 0)
                try await twoNodes(fixture, manager: manager, worker: worker)
            } catch {
                await worker.remove()
                await manager.remove()
                throw error
            }
            await worker.remove()
            await manager.remove()
        }
    }

    func twoNodes(_ fixture: EngineFixture, manager: OwnEngine, worker: WorkerNode) async throws {
        let workspace = try Workspace()
        let environment = ["RECONCILE_STATE_DIR": workspace.root.appendingPathComponent("state").path]
        let port = try fixture.freePort()
        func write(image: String, _ extra: String = "replicas: 2", order: String = "stop-first") throws -> String {
            try SwarmTests.file(
                workspace, service: fixture.service, port: port, engine: manager.host, image: image, order: order,
                extra: extra)
        }
        // What each node serves on its own port (a host-mode port answers on its node only).
        func served() async -> [String] {
            var versions: [String] = []
            for host in ["127.0.0.1", worker.address] {
                let body = await OwnEngine.output(
                    "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://\(host):\(port)/health', "
                        + "timeout=5).read().decode())\" 2>/dev/null")
                versions.append(
                    body.contains(#""version":"v1""#) ? "v1" : body.contains(#""version":"v2""#) ? "v2" : "-")
            }
            return versions
        }

        // Two replicas on two nodes, one each: allowed, and both serve.
        let created = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:v1")], environment: environment)
        #expect(created.code == 0, "\(created.output)")
        #expect(await served() == ["v1", "v1"])
        let status = try await Binary.launch(
            ["status", try write(image: "reconcile-fixture:v1")], environment: environment)
        #expect(status.output.contains("swarm: 2/2 running ("), "\(status.output)")
        #expect(status.output.contains("\(worker.hostname): running"), "\(status.output)")
        let plan = try await Binary.launch(
            ["diff", "--format", "markdown", try write(image: "reconcile-fixture:v2")], environment: environment)
        #expect(plan.output.contains("swarm: 2/2 running (") && plan.output.contains(worker.hostname), "\(plan.output)")

        // Rolled one node at a time; a version failing its health is rolled back on both.
        let updated = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:v2")], environment: environment)
        #expect(updated.code == 0, "\(updated.output)")
        #expect(await served() == ["v2", "v2"])
        let failed = try await Binary.launch(
            ["apply", try write(image: "reconcile-fixture:unhealthy-500")], environment: environment)
        #expect(failed.code == 3, "\(failed.output)")
        #expect(await served() == ["v2", "v2"], "\(failed.output)")

        // start-first with a host-mode port is refused even with a free node: Swarm would start the
        // new task on the old one's node (measured: "port is already allocated", every time).
        let startFirst = try await Binary.launch(
            ["diff", try write(image: "reconcile-fixture:v1", "replicas: 1", order: "start-first")],
            environment: environment)
        #expect(
            startFirst.code == 1 && startFirst.output.contains("where port \(port) is taken"), "\(startFirst.output)")

        // A task on the other node is gated on that node's address, not on this host's port.
        let moved = try await Binary.launch(
            [
                "apply",
                try write(
                    image: "reconcile-fixture:v1",
                    "replicas: 1\nplacement: {constraints: [\"node.hostname==\(worker.hostname)\"]}"),
            ], environment: environment)
        #expect(moved.code == 0, "\(moved.output)")
        #expect(moved.output.contains("gate \(worker.hostname): health /health ok"), "\(moved.output)")
        #expect(await served() == ["-", "v1"])

        // Git as the history on a swarm: a tag that moves (on both nodes), two revisions, then
        // `rollback` runs the first revision's bytes on both nodes, and the hold keeps them.
        let tag = "\(fixture.service)/app:latest"
        for host in [manager.host, worker.host] {
            #expect(await OwnEngine.shell("docker -H \(host) tag reconcile-fixture:v1 \(tag)") == 0)
        }
        let repository = GitHistoryTests.Repository(root: workspace.root.path)
        try repository.git(["init", "-q"])
        let file = try write(image: tag)
        try repository.git(["add", "."])
        try repository.git(["commit", "-qm", "swarm on latest"])
        let first = try repository.git(["rev-parse", "HEAD"])
        let onFirst = try await Binary.launch(["apply", file], environment: environment)
        #expect(onFirst.code == 0, "\(onFirst.output)")
        #expect(await served() == ["v1", "v1"])
        for host in [manager.host, worker.host] {
            #expect(await OwnEngine.shell("docker -H \(host) tag reconcile-fixture:v2 \(tag)") == 0)
        }
        _ = try write(image: tag, "replicas: 2\nenv: {RELEASE: two}")
        try repository.git(["commit", "-qam", "swarm: release two"])
        let onSecond = try await Binary.launch(["apply", file], environment: environment)
        #expect(onSecond.code == 0, "\(onSecond.output)")
        #expect(await served() == ["v2", "v2"])
        let second = try repository.git(["rev-parse", "HEAD"])
        let history = try await Binary.launch(["history", file], environment: environment)
        // The service's revision is the live one.
        #expect(history.output.contains("*  \(second.prefix(12))"), "\(history.output)")
        let rollback = try await Binary.launch(["rollback", file], environment: environment)
        #expect(rollback.code == 0, "\(rollback.output)")
        #expect(rollback.output.contains("to \(first.prefix(12))"), "\(rollback.output)")
        #expect(await served() == ["v1", "v1"], "\(rollback.output)")
        let held = try await Binary.launch(["apply", file], environment: environment)
        #expect(held.code == 0 && held.output.contains("hold held at \(first.prefix(12))"), "\(held.output)")
        #expect(await served() == ["v1", "v1"])
    }
}

/// A second dockerd in a network namespace of its own, reached from the host over a veth pair
/// (`hostSide` here, `address` there), with its own bridge inside the namespace and its own host
/// name (a UTS namespace), so that a swarm sees two nodes.
final class WorkerNode {
    let root: String
    let namespace: String
    let hostname: String
    let hostSide: String
    let address: String
    private let link: String
    private(set) var pid: pid_t = 0
    var host: String { "unix://\(root)/d.sock" }

    init() throws {
        let id = UUID().uuidString.prefix(6).lowercased()
        root = "/tmp/rw-\(id)"
        namespace = "rns\(id)"
        hostname = "worker-\(id)"
        link = "rv\(id)"
        let subnet = Int.random(in: 1...250)
        hostSide = "10.250.\(subnet).1"
        address = "10.250.\(subnet).2"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let inside = "ip netns exec \(namespace)"
        for command in [
            "ip netns add \(namespace)", "ip link add \(link)h type veth peer name \(link)w",
            "ip addr add \(hostSide)/30 dev \(link)h", "ip link set \(link)h up",
            "ip link set \(link)w netns \(namespace)", "\(inside) ip addr add \(address)/30 dev \(link)w",
            "\(inside) ip link set \(link)w up", "\(inside) ip link set lo up",
            "\(inside) ip link add rb\(id) type bridge", "\(inside) ip addr add 10.249.\(subnet).1/24 dev rb\(id)",
            "\(inside) ip link set rb\(id) up",
        ] {
            #expect(OwnEngine.shellNow(command) == 0, "\(command)")
        }
    }

    /// Starts the worker's dockerd in the namespace and waits until it answers.
    func start() async throws {
        let bridge = "rb" + root.suffix(6)
        // nsenter and unshare exec (no fork): the pid is dockerd's.
        pid = try Spawn.start(
            "/usr/bin/nsenter",
            [
                "--net=/var/run/netns/\(namespace)", "unshare", "-u", "sh", "-c",
                "hostname \(hostname) && exec dockerd --data-root \(root)/data --exec-root \(root)/exec "
                    + "--pidfile \(root)/pid -H \(host) --bridge \(bridge) --iptables=false",
            ], output: "\(root)/dockerd.log")
        try await OwnEngine.waitUntilAnswers(host, "the worker's dockerd")
    }

    func load(_ image: String) async { await OwnEngine.load(image, into: host) }

    func remove() async {
        await OwnEngine.shell("docker -H \(host) swarm leave --force >/dev/null 2>&1")
        await OwnEngine.shell("docker -H \(host) rm -f $(docker -H \(host) ps -aq) >/dev/null 2>&1")
        if pid > 0 {
            kill(pid, SIGTERM)
            _ = await Spawn.finished(pid)
            pid = 0
        }
        await OwnEngine.shell("ip netns del \(namespace); ip link del \(link)h 2>/dev/null")
        await OwnEngine.removeFolder(root)
    }
}
