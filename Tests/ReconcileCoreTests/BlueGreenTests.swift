import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Blue-green in memory: the file's keys, the plan's proxy lines, HAProxy's answers read, and the
/// strategy's order of steps against the fake engine and a fake proxy.
struct BlueGreenUnitTests {
    let image = ImageSnapshot(id: "sha256:1111")

    var spec: EnvironmentSpec {
        var spec = Build.spec(service: "app", environment: "staging", image: "acme/app:v1", port: 8001)
        spec.strategy = .blueGreen
        spec.proxy.image = ImageReference(repository: "reconcile-proxy", tag: "2.6")
        spec.health.startup = .zero
        spec.health.attempts = 2
        return spec
    }

    func parse(_ yaml: String) -> Result<SpecParser.Parsed, ValidationFailure> {
        SpecParser.parse(Array(yaml.utf8), file: "staging.yml", defaultEnvironment: "staging")
    }

    @Test func theFileSaysBlueGreenAndItsProxy() throws {
        let parsed = try parse(
            """
            service: app
            image: acme/app:v1
            port: 8001
            strategy: blue-green
            proxy:
              image: haproxy:2.9
              drain_timeout: 45s
            """
        ).get()
        #expect(parsed.spec.strategy == .blueGreen)
        #expect(parsed.spec.proxy.image.description == "haproxy:2.9")
        #expect(parsed.spec.proxy.drainTimeout == .seconds(45))
        let defaults = try parse("service: app\nimage: acme/app:v1\nport: 8001\nstrategy: blue-green\n").get()
        #expect(defaults.spec.proxy.image.description == "haproxy:2.8")
        #expect(defaults.spec.proxy.drainTimeout == .seconds(30))
    }

    @Test(arguments: [
        ("proxy: {drain_timeout: 5s}", "proxy", "is only used with strategy: blue-green", 4),
        ("strategy: blue-gren", "strategy", "did you mean \"blue-green\"?", 4),
        ("strategy: blue-green\nproxy: {drain_timeout: 9999999h}", "proxy.drain_timeout", "", 5),
        ("strategy: blue-green\nproxy: {image: \"Not An Image\"}", "proxy.image", "is not an image reference", 5),
        ("strategy: blue-green\nproxy: {imag: haproxy}", "proxy.imag", "", 5),
    ])
    func badProxySettingsAreNamedWithTheirLine(_ text: String, field: String, message: String, line: Int) {
        guard case .failure(let failure) = parse("service: app\nimage: acme/app:v1\nport: 8001\n" + text) else {
            Issue.record("accepted: \(text)")
            return
        }
        let issue = failure.issues.first { $0.field == field }
        #expect(issue != nil, "\(failure.issues)")
        #expect(issue?.line == line)
        if !message.isEmpty { #expect(issue?.message.contains(message) == true, "\(failure.issues)") }
        #expect(failure.issues.count == 1, "\(failure.issues)")
    }

    @Test func aNameEndingInProxyIsReserved() {
        guard case .failure(let failure) = parse("service: app\nenvironment: web-proxy\nimage: a:1\nport: 1\n") else {
            Issue.record("accepted")
            return
        }
        #expect(failure.issues.first?.message.contains("-proxy (the blue-green proxy)") == true)
    }

    @Test func haproxysAnswersAreRead() throws {
        let state = """
            1
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
            3 app 1 live 172.18.0.2 2 0 1 1 1 1 0 2 0 0 0 0 bgt-app 8080 - 0 0 - - 0
            3 app 2 next 172.18.0.4 2 4 1 1 1 1 0 0 8 0 0 0 - 8080 - 0 0 - - 0
            """
        let routing = try #require(ProxyRouting.parse(state))
        #expect(routing.live == ProxyRouting.Server(name: "live", address: "172.18.0.2", serving: true))
        // `disabled` in the file leaves flag 0x04 after `state ready`: it serves.
        #expect(routing.next?.serving == true)
        #expect(!routing.settled(on: "172.18.0.2"))
        #expect(routing.summary.contains("172.18.0.2 (live) and 172.18.0.4 (next)"))
        #expect(ProxyRouting.parse("Unknown command.\n") == nil)
        let maint = state.replacingOccurrences(of: "172.18.0.4 2 4", with: "172.18.0.4 0 5")
        #expect(try #require(ProxyRouting.parse(maint)).settled(on: "172.18.0.2"))

        let stat = "# pxname,svname,qcur,qmax,scur,smax\npublic,FRONTEND,,,3,9\napp,live,0,0,2,5\napp,next,0,0,0,1\n"
        #expect(ProxyRouting.sessions(stat, server: "live") == 2)
        #expect(ProxyRouting.sessions(stat, server: "other") == nil)
    }

    @Test func theConfigurationNamesTheLiveContainerAndNothingThatMoves() {
        var spec = spec
        let text = ProxyConfig.configuration(spec)
        #expect(text.contains("server live app-staging:8000 resolvers docker"))
        #expect(text.contains("server next 127.0.0.1:8000 disabled"))
        #expect(text.contains("stats socket /usr/local/etc/haproxy/admin.sock"))
        let fingerprint = ProxyConfig.fingerprint(spec)
        spec.file = "/elsewhere/staging.yml"
        spec.proxy.drainTimeout = .seconds(1)
        #expect(ProxyConfig.fingerprint(spec) == fingerprint, "the file's path and drain_timeout need no new proxy")
        spec.proxy.image = ImageReference(repository: "haproxy", tag: "2.9")
        #expect(ProxyConfig.fingerprint(spec) != fingerprint)
        let creation = ProxyConfig.creation(spec, folder: "/state/proxy/app-staging-proxy")
        #expect(creation.port == PublishedPort(hostIP: "0.0.0.0", hostPort: 8001, containerPort: 8080))
        #expect(
            creation.mounts == [
                FileMount(source: "/state/proxy/app-staging-proxy", target: ProxyConfig.mountPoint, readOnly: false)
            ])
        #expect(creation.network == "app-staging-net")
        let app = ContainerCreation(desired: DesiredEnvironment(spec: spec), deployedAt: Date())
        #expect(app.port == nil && app.network == "app-staging-net")
    }

    // MARK: Plans

    func host(_ containers: [ContainerSnapshot], routing: [String: ProxyRouting] = [:]) -> HostState {
        var host = HostState(containers: containers, images: ["acme/app:v1": image])
        host.routing = routing
        return host
    }

    func live(_ spec: EnvironmentSpec, address: String = "10.0.0.2") -> ContainerSnapshot {
        let creation = ContainerCreation(desired: DesiredEnvironment(spec: spec), deployedAt: Date())
        var container = ContainerSnapshot(
            id: "live1", name: spec.containerName, image: "acme/app:v1", imageID: image.id, state: .running,
            labels: creation.labels)
        container.networks = [spec.networkName: address]
        return container
    }

    func proxy(_ spec: EnvironmentSpec, state: ContainerState = .running, onNetwork: Bool = true) -> ContainerSnapshot {
        var proxy = ContainerSnapshot(
            id: "proxy1", name: spec.proxyName, image: spec.proxy.image.description, imageID: "sha256:p", state: state,
            labels: ProxyConfig.creation(spec, folder: "/f").labels,
            ports: [PublishedPort(hostIP: "0.0.0.0", hostPort: spec.port, containerPort: 8080)])
        if onNetwork { proxy.networks = [spec.networkName: "10.0.0.1"] }
        return proxy
    }

    @Test func thePlanSaysWhatBecomesOfTheProxy() {
        let desired = DesiredEnvironment(spec: spec)
        let fresh = Differ.plan(desired, host: host([]))
        #expect(fresh.action == .create && fresh.proxy?.action == .create)

        let settled = ProxyRouting(servers: [.init(name: "live", address: "10.0.0.2", serving: true)])
        let inSync = Differ.plan(desired, host: host([live(spec), proxy(spec)], routing: [spec.proxyName: settled]))
        #expect(inSync.action == .inSync && inSync.proxy == nil && !inSync.hasChanges)
        #expect(inSync.conflicts.isEmpty, "the proxy's own port is no conflict")

        let elsewhere = ProxyRouting(servers: [.init(name: "live", address: "10.0.0.9", serving: true)])
        let drifted = Differ.plan(desired, host: host([live(spec), proxy(spec)], routing: [spec.proxyName: elsewhere]))
        #expect(drifted.proxy?.action == .route && drifted.hasChanges)

        let cutOff = Differ.plan(desired, host: host([live(spec), proxy(spec, onNetwork: false)]))
        #expect(cutOff.proxy?.action == .recreate && cutOff.proxy?.reason.contains("not on app-staging-net") == true)
        var detached = live(spec)
        detached.networks = [:]
        let liveCutOff = Differ.plan(desired, host: host([detached, proxy(spec)], routing: [spec.proxyName: settled]))
        #expect(liveCutOff.action == .replace && liveCutOff.changes.contains { $0.field == "network" })
        let missingImage = Differ.plan(desired, host: HostState(containers: [], images: ["acme/app:v1": image]))
        #expect(missingImage.warnings.contains { $0.contains("proxy image reconcile-proxy:2.6 is not on this host") })

        let stopped = Differ.plan(desired, host: host([live(spec), proxy(spec, state: .exited)]))
        #expect(stopped.proxy?.action == .start)

        var newer = spec
        newer.proxy.image = ImageReference(repository: "haproxy", tag: "2.9")
        let upgrade = Differ.plan(DesiredEnvironment(spec: newer), host: host([live(newer), proxy(spec)]))
        #expect(upgrade.proxy?.action == .recreate)
        #expect(upgrade.proxy?.reason.contains("about a second") == true)

        var stopFirst = spec
        stopFirst.strategy = .stopFirst
        let back = Differ.plan(DesiredEnvironment(spec: stopFirst), host: host([live(spec), proxy(spec)]))
        #expect(back.action == .replace && back.proxy?.action == .remove)
        #expect(back.changes.contains { $0.field == "strategy" && $0.old == "blue-green" && $0.new == nil })

        var backup = live(spec)
        backup.id = "old1"
        backup.name = "\(spec.containerName)-backup-1"
        let draining = Differ.plan(
            desired, host: host([live(spec), proxy(spec), backup], routing: [spec.proxyName: settled]))
        #expect(draining.stop.map(\.name) == [backup.name])

        let squatter = ContainerSnapshot(
            id: "x", name: spec.proxyName, image: "nginx", imageID: "sha256:n", state: .running)
        #expect(Differ.plan(desired, host: host([squatter])).action == .conflict)
        var foreignNetwork = host([])
        foreignNetwork.networks[spec.networkName] = NetworkSnapshot(id: "n", name: spec.networkName, labels: [:])
        let refused = Differ.plan(desired, host: foreignNetwork)
        #expect(refused.action == .conflict && refused.conflicts.first?.contains("did not create") == true)
    }

    // MARK: The strategy

    struct Scene {
        let engine: FakeEngine
        let proxies = FakeProxyRuntime()
        let log = EventLog()
        let probe: HostProbe

        func reconcile(_ spec: EnvironmentSpec) async -> DeployOutcome {
            var reconciler = Reconciler(
                engine: engine, probe: probe, clock: ManualClock(), state: FakeStateStore(key: [1]),
                identity: FakeIdentity(), reporter: log)
            reconciler.proxies = proxies
            return await reconciler.reconcile(
                DesiredEnvironment(spec: spec), options: Reconciler.Options(approval: .approved)
            ).outcome
        }
    }

    /// A scene whose probe answers 200 until `failing` names who fails: the new version's own
    /// address (`direct`) or the public port (`public`).
    func scene(_ failing: Locked<String>) async -> Scene {
        await scene { host, _ in
            switch failing.withLock({ $0 }) {
            case "direct": return host == "127.0.0.1" ? 200 : 500
            case "public": return host == "127.0.0.1" ? 502 : 200
            default: return 200
            }
        }
    }

    func scene(_ answer: @escaping @Sendable (String, String) -> Int) async -> Scene {
        let engine = FakeEngine(images: [
            "acme/app:v1": image, "acme/app:v2": ImageSnapshot(id: "sha256:2222"),
            "reconcile-proxy:2.6": ImageSnapshot(id: "sha256:p"),
        ])
        return Scene(engine: engine, probe: HostProbe(answer))
    }

    @Test func aDeployGatesTheNewVersionAtItsAddressThenSwitches() async throws {
        let scene = await scene { _, _ in 200 }
        #expect(await scene.reconcile(spec) == .converged("acme/app:v1 serving on port 8001 through the proxy"))
        var next = spec
        next.image = ImageReference(repository: "acme/app", tag: "v2")
        let outcome = await scene.reconcile(next)
        #expect(outcome == .converged("acme/app:v2 serving on port 8001 through the proxy"))
        let commands = scene.proxies.commands.filter { $0.hasPrefix("set") }.map {
            $0.split(separator: " ").prefix(5).joined(separator: " ")
        }
        // The switch: next takes the new address before live stops taking requests; then settle.
        let address = try #require(await scene.engine.container(named: spec.containerName)?.networks[spec.networkName])
        #expect(
            Array(commands.suffix(6)) == [
                "set server app/next addr \(address)", "set server app/next state ready",
                "set server app/live state maint", "set server app/live addr \(address)",
                "set server app/live state ready", "set server app/next state maint",
            ])
        let routing = try await scene.proxies.routing(spec.proxyName)
        let live = try #require(await scene.engine.container(named: spec.containerName))
        #expect(live.image == "acme/app:v2")
        #expect(routing.settled(on: try #require(live.networks[spec.networkName])))
        let backup = try #require(await scene.engine.container(named: "\(spec.containerName)-backup-1"))
        #expect(backup.state == .exited)
        // Gated at its own address: the probe saw the new version's address before the port.
        #expect(scene.probe.hosts.contains { $0.hasPrefix("10.0.0.") })
    }

    @Test func aFailedGateRemovesTheNewVersionAndTouchesNothingElse() async throws {
        let failing = Locked("")
        let scene = await scene(failing)
        _ = await scene.reconcile(spec)
        failing.withLock { $0 = "direct" }
        let before = scene.proxies.commands.count
        var next = spec
        next.image = ImageReference(repository: "acme/app", tag: "v2")
        let outcome = await scene.reconcile(next)
        guard case .rolledBack(_, let restored) = outcome else {
            Issue.record("expected a rollback, got \(outcome)")
            return
        }
        #expect(restored.contains("serves throughout"))
        #expect(!scene.proxies.commands.dropFirst(before).contains { $0.hasPrefix("set") })
        let live = try #require(await scene.engine.container(named: spec.containerName))
        #expect(live.image == "acme/app:v1" && live.state == .running)
        #expect(await scene.engine.container(named: spec.candidateName) == nil)
    }

    @Test func aNewVersionThatFailsThroughThePortIsSwitchedBack() async throws {
        let failing = Locked("")
        let again = await scene(failing)
        let engine = again.engine
        _ = await again.reconcile(spec)
        failing.withLock { $0 = "public" }
        var next = spec
        next.image = ImageReference(repository: "acme/app", tag: "v2")
        let outcome = await again.reconcile(next)
        guard case .rolledBack(let failure, let restored) = outcome else {
            Issue.record("expected a rollback, got \(outcome)")
            return
        }
        #expect(failure.contains("not through port 8001"))
        #expect(restored.contains("acme/app:v1"))
        let live = try #require(await engine.container(named: spec.containerName))
        #expect(live.image == "acme/app:v1" && live.state == .running)
        let routing = try await again.proxies.routing(spec.proxyName)
        #expect(routing.settled(on: try #require(live.networks[spec.networkName])))
    }

    @Test func aProxyThatCannotBeReachedRefusesBeforeAnythingChanges() async throws {
        let scene = await scene { _, _ in 200 }
        scene.proxies.fail("show servers state")
        let outcome = await scene.reconcile(spec)
        guard case .refused(let reason) = outcome else {
            Issue.record("expected a refusal, got \(outcome)")
            return
        }
        #expect(reason.contains("admin socket did not answer"))
        #expect(reason.contains("mounted at the same path"))
        #expect(await scene.engine.container(named: spec.candidateName) == nil)
    }
}

/// Answers by host and path, recording the hosts asked.
final class HostProbe: HealthProbe, Sendable {
    private let answer: @Sendable (String, String) -> Int
    private let asked = Locked([String]())

    init(_ answer: @escaping @Sendable (String, String) -> Int) { self.answer = answer }

    var hosts: [String] { asked.withLock { $0 } }

    func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
        asked.withLock { $0.append(host) }
        return HTTPAnswer(status: answer(host, path), body: #"{"status":"healthy"}"#, latency: .milliseconds(2))
    }
}
