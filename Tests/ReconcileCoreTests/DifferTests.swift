import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

struct DifferTests {
    let spec = Build.spec()
    var desired: DesiredEnvironment { DesiredEnvironment(spec: spec) }
    let image = ImageSnapshot(id: "sha256:1111")

    func host(_ containers: [ContainerSnapshot]) -> HostState {
        HostState(containers: containers, images: ["acme/app:v1": image])
    }

    @Test func nothingRunningMeansCreate() {
        let plan = Differ.plan(desired, host: host([]))
        #expect(plan.action == .create)
        #expect(plan.changes.first == FieldChange(field: "image", old: nil, new: "acme/app:v1"))
        #expect(plan.changes.map(\.field) == ["image", "ports", "restart", "stop_timeout"])
        #expect(plan.hasChanges)
    }

    @Test func matchingRunningContainerIsInSync() {
        let plan = Differ.plan(desired, host: host([Build.container(desired)]))
        #expect(plan.action == .inSync)
        #expect(plan.changes.isEmpty)
        #expect(plan.prune.isEmpty)
        #expect(!plan.hasChanges)
        #expect(plan.warnings.isEmpty)
    }

    @Test func anEnvironmentInSyncWhoseTagIsGoneWarnsOfAPullOnlyWhenPullIsAlways() {
        // `docker rmi` of the tag while the container runs: apply pulls nothing (pull: missing).
        let running = Build.container(desired)
        let gone = HostState(containers: [running], images: [:])
        #expect(Differ.plan(desired, host: gone).action == .inSync)
        #expect(Differ.plan(desired, host: gone).warnings.isEmpty)
        var always = spec
        always.pull = .always
        #expect(
            Differ.plan(DesiredEnvironment(spec: always), host: gone).warnings
                == ["image acme/app:v1 is not on this host; apply will pull it"])
    }

    @Test func changedFieldsAreListedInOrder() {
        var old = spec
        old.env = ["LOG_LEVEL": "debug", "OLD": "1"]
        old.image = ImageReference(repository: "acme/app", tag: "v0")
        var new = spec
        new.env = ["LOG_LEVEL": "info", "NEW": "2"]
        new.memory = 512 << 20
        let running = Build.container(DesiredEnvironment(spec: old))
        let plan = Differ.plan(DesiredEnvironment(spec: new), host: host([running]))
        #expect(plan.action == .replace)
        #expect(
            plan.changes == [
                FieldChange(field: "image", old: "acme/app:v0", new: "acme/app:v1"),
                FieldChange(field: "env.LOG_LEVEL", old: "debug", new: "info"),
                FieldChange(field: "env.NEW", old: nil, new: "2"),
                FieldChange(field: "env.OLD", old: "1", new: nil),
                FieldChange(field: "resources.memory", old: nil, new: "512m"),
            ])
    }

    @Test func movedTagIsAReplace() {
        let running = Build.container(desired, imageID: "sha256:0000")
        let plan = Differ.plan(desired, host: host([running]))
        #expect(plan.action == .replace)
        #expect(
            plan.changes == [
                FieldChange(field: "image", old: "acme/app:v1 (0000)", new: "acme/app:v1 (1111, the tag has moved)")
            ])
    }

    @Test func stoppedMatchingContainerIsStarted() {
        let plan = Differ.plan(desired, host: host([Build.container(desired, state: .exited)]))
        #expect(plan.action == .start)
        #expect(plan.changes == [FieldChange(field: "state", old: "exited", new: "running")])
    }

    @Test func foreignContainerWithTheNameIsAConflict() {
        let plan = Differ.plan(desired, host: host([Build.foreign(name: "app-staging")]))
        #expect(plan.action == .conflict)
        #expect(
            plan.conflicts == [
                #"container "app-staging" (f0f0f0f0f0f0) was not created by reconcile; reconcile will not touch it. Rename or remove it (docker rm -f app-staging), or change service/environment."#
            ])
    }

    @Test func foreignContainerOnThePortIsAConflict() {
        let plan = Differ.plan(desired, host: host([Build.foreign(name: "nginx", port: 18001)]))
        #expect(plan.action == .conflict)
        #expect(
            plan.conflicts == [
                #"host port 18001 is published by container "nginx" (f0f0f0f0f0f0), which reconcile does not manage for this environment. Stop it or choose another port."#
            ])
    }

    @Test func portOnAnotherAddressIsNoConflict() {
        var local = spec
        local.bind = "127.0.0.1"
        var other = Build.foreign(name: "nginx", port: 18001)
        other.ports = [PublishedPort(hostIP: "127.0.0.2", hostPort: 18001, containerPort: 80)]
        #expect(Differ.plan(DesiredEnvironment(spec: local), host: host([other])).action == .create)
    }

    @Test func containerOfAnotherEnvironmentIsAConflict() {
        let production = Build.spec(environment: "production")
        var renamed = Build.container(DesiredEnvironment(spec: production), name: "app-staging")
        renamed.ports = []
        let plan = Differ.plan(desired, host: host([renamed]))
        #expect(plan.action == .conflict)
        #expect(plan.conflicts.first?.contains(#"belongs to reconcile environment "production""#) == true)
    }

    @Test func surplusBackupsArePruned() {
        var backups: [ContainerSnapshot] = []
        for index in 1...4 {
            backups.append(
                Build.container(
                    desired, id: "b\(index)", state: .exited,
                    name: "app-staging-backup-\(index)",
                    deployedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(index) * 60)))
        }
        let plan = Differ.plan(desired, host: host([Build.container(desired)] + backups))
        #expect(plan.action == .inSync)
        #expect(plan.prune.map(\.name) == ["app-staging-backup-1"])
        #expect(plan.hasChanges)

        var changed = spec
        changed.env = ["A": "1"]
        let replacing = Differ.plan(DesiredEnvironment(spec: changed), host: host([Build.container(desired)] + backups))
        #expect(replacing.prune.map(\.name) == ["app-staging-backup-2", "app-staging-backup-1"])
    }

    @Test func leftoverOfAnInterruptedApplyIsPrunedAndARenamedOneLeftAlone() {
        let leftover = Build.container(desired, id: "dead", state: .exited, name: "app-staging-candidate")
        let renamed = Build.container(desired, id: "mine", state: .exited, name: "app-staging-keep")
        let plan = Differ.plan(desired, host: host([Build.container(desired), leftover, renamed]))
        #expect(
            plan.prune == [
                PruneItem(
                    name: "app-staging-candidate", id: "dead", reason: "left over from an interrupted apply",
                    leftover: true)
            ])
        #expect(
            plan.warnings == [
                "container app-staging-keep (mine) carries this environment's labels under a name reconcile does not use (renamed by hand?); it is left alone"
            ])
    }

    @Test func aForeignContainerOnTheCandidateNameIsAConflict() {
        let plan = Differ.plan(desired, host: host([Build.foreign(name: "app-staging-candidate")]))
        #expect(plan.action == .conflict)
        #expect(plan.conflicts.first?.hasPrefix("a container named app-staging-candidate (f0f0f0f0f0f0)") == true)
    }

    @Test func missingSecretsAndImageAreWarnings() {
        var withSecret = spec
        withSecret.secrets = ["API_TOKEN"]
        withSecret.pull = .never
        let plan = Differ.plan(DesiredEnvironment(spec: withSecret), host: HostState(containers: [], images: [:]))
        #expect(
            plan.warnings == [
                "secret API_TOKEN not available here (set in the environment or secrets_file); diff cannot tell if its value changed, and apply will refuse without it",
                "image acme/app:v1 is not on this host and pull is never; apply will fail",
            ])
        #expect(
            plan.changes.contains(
                FieldChange(field: "secrets.API_TOKEN", old: nil, new: "(value or fingerprint key not available) ?")))
    }

    @Test func changedSecretValueIsAReplaceShownByFingerprintOnly() {
        var withSecret = spec
        withSecret.secrets = ["API_TOKEN"]
        let key = [UInt8](repeating: 9, count: 32)
        let old = DesiredEnvironment(spec: withSecret, secretValues: ["API_TOKEN": "hunter2"], fingerprintKey: key)
        let new = DesiredEnvironment(
            spec: withSecret, secretValues: ["API_TOKEN": "correct horse"], fingerprintKey: key)
        let plan = Differ.plan(new, host: host([Build.container(old)]))
        #expect(plan.action == .replace)
        #expect(plan.changes.map(\.field) == ["secrets.API_TOKEN"])
        let rendered = plan.changes.map { "\($0.old ?? "") \($0.new ?? "")" }.joined()
        #expect(!rendered.contains("hunter2") && !rendered.contains("correct horse"))
        #expect(plan.changes.first?.new?.hasPrefix("(hmac:") == true)

        // Without the value, or without the key (CI), diff cannot tell, and says so.
        let unknown = Differ.plan(DesiredEnvironment(spec: withSecret), host: host([Build.container(old)]))
        #expect(unknown.action == .inSync)
        let keyless = Differ.plan(
            DesiredEnvironment(spec: withSecret, secretValues: ["API_TOKEN": "correct horse"]),
            host: host([Build.container(old)]))
        #expect(keyless.action == .inSync)
        #expect(keyless.warnings.contains { $0.hasPrefix("no fingerprint key here") })
    }

    /// Issue 8, class 11: a fingerprint is an HMAC under the host's key, so it cannot be checked
    /// against guesses without the key; containers from before keys still compare.
    @Test func secretFingerprintsAreKeyedAndOldOnesStillCompare() {
        let a = RuntimeConfig.secretFingerprint(name: "T", value: "1234", key: [UInt8](repeating: 1, count: 32))
        let b = RuntimeConfig.secretFingerprint(name: "T", value: "1234", key: [UInt8](repeating: 2, count: 32))
        #expect(a != b && a.hasPrefix("hmac:") && a.count == 17)

        var withSecret = spec
        withSecret.secrets = ["API_TOKEN"]
        var legacy = Build.container(DesiredEnvironment(spec: withSecret, secretValues: ["API_TOKEN": "hunter2"]))
        let unkeyed = RuntimeConfig(spec: withSecret, secretValues: ["API_TOKEN": "hunter2"], legacy: ["API_TOKEN"])
        legacy.labels[Labels.config] = unkeyed.canonicalJSON
        let key = [UInt8](repeating: 3, count: 32)
        let same = Differ.plan(
            DesiredEnvironment(spec: withSecret, secretValues: ["API_TOKEN": "hunter2"], fingerprintKey: key),
            host: host([legacy]))
        #expect(same.action == .inSync)
        let changed = Differ.plan(
            DesiredEnvironment(spec: withSecret, secretValues: ["API_TOKEN": "hunter3"], fingerprintKey: key),
            host: host([legacy]))
        #expect(changed.action == .replace)
    }

    @Test func containerWithoutConfigLabelIsReplacedWithAReason() {
        var running = Build.container(desired)
        running.labels[Labels.config] = nil
        running.labels[Labels.fingerprint] = "old"
        let plan = Differ.plan(desired, host: host([running]))
        #expect(plan.action == .replace)
        #expect(
            plan.changes == [
                FieldChange(
                    field: "config", old: "created by an older reconcile", new: "as in environments/staging.yml")
            ])
    }
}

struct RuntimeConfigTests {
    @Test func fingerprintIgnoresMapOrderAndSecretValues() {
        var first = Build.spec()
        first.env = ["A": "1", "B": "2"]
        first.secrets = ["S"]
        var second = first
        second.env = ["B": "2", "A": "1"]
        let one = RuntimeConfig(spec: first, secretValues: ["S": "x"])
        let two = RuntimeConfig(spec: second, secretValues: [:])
        #expect(one.fingerprint == two.fingerprint)
        #expect(one.fingerprint.count == 64)
        #expect(RuntimeConfig.decode(label: one.canonicalJSON) == one)
        #expect(!one.canonicalJSON.contains("\"x\""))
    }

    @Test func fingerprintChangesWithTheConfig() {
        var changed = Build.spec()
        changed.port = 18002
        #expect(
            RuntimeConfig(spec: Build.spec(), secretValues: [:]).fingerprint
                != RuntimeConfig(spec: changed, secretValues: [:]).fingerprint)
    }
}

struct EnvironmentSetTests {
    func parsed(_ yaml: String, _ file: String) throws -> SpecParser.Parsed {
        try SpecParser.parse(Array(yaml.utf8), file: file, defaultEnvironment: "x").get()
    }

    @Test func sharedPortAndNameAreReported() throws {
        let staging = try parsed("service: a\nenvironment: staging\nimage: b\nport: 8001\n", "envs/staging.yml")
        let copy = try parsed("service: a\nenvironment: staging\nimage: b\nport: 8001\n", "envs/copy.yml")
        #expect(
            EnvironmentSet.conflicts([staging, copy]).map(\.description) == [
                #"envs/copy.yml:2:14: environment: container name "a-staging" is also used by envs/staging.yml; give each environment its own service/environment"#,
                "envs/copy.yml:4:7: port: host port 8001 is also used by envs/staging.yml (staging); each environment needs its own port",
            ])
    }

    @Test func distinctEnvironmentsPass() throws {
        let staging = try parsed("service: a\nenvironment: staging\nimage: b\nport: 8001\n", "staging.yml")
        let production = try parsed("service: a\nenvironment: production\nimage: b\nport: 8000\n", "production.yml")
        #expect(EnvironmentSet.conflicts([staging, production]).isEmpty)
    }
}

struct ImageReferenceTests {
    @Test(arguments: [
        ("nginx", "nginx", "latest" as String?, nil as String?), ("acme/app:v1", "acme/app", "v1", nil),
        ("localhost:5000/app", "localhost:5000/app", "latest", nil),
        ("app@sha256:" + String(repeating: "0", count: 64), "app", nil, "sha256:" + String(repeating: "0", count: 64)),
    ])
    func parses(_ text: String, _ repository: String, _ tag: String?, _ digest: String?) throws {
        let reference = try ImageReference.parse(text).get()
        #expect(reference.repository == repository)
        #expect(reference.tag == tag)
        #expect(reference.digest == digest)
    }

    @Test(arguments: ["", "a b", "app:", "app:-x", "/app", "app@md5:00"])
    func refuses(_ text: String) {
        #expect(throws: ImageReferenceError.self) { try ImageReference.parse(text).get() }
    }
}

struct ContainerCreationTests {
    @Test func carriesLabelsEnvironmentAndSecrets() {
        var spec = Build.spec()
        spec.env = ["B": "2", "A": "1"]
        spec.secrets = ["TOKEN", "MISSING"]
        let creation = ContainerCreation(
            desired: DesiredEnvironment(spec: spec, secretValues: ["TOKEN": "t0k"]),
            revision: FileRevision(commit: "abc", dirty: true), deployedAt: Date(timeIntervalSince1970: 0))
        #expect(creation.name == "app-staging")
        #expect(creation.environment.map { "\($0.0)=\($0.1)" } == ["A=1", "B=2", "TOKEN=t0k"])
        #expect(creation.labels[Labels.revision] == "abc")
        #expect(creation.labels[Labels.dirty] == "true")
        #expect(creation.labels[Labels.deployedAt] == "1970-01-01T00:00:00Z")
        #expect(creation.labels.values.allSatisfy { !$0.contains("t0k") })
    }
}

struct InterruptedApplyTests {
    @Test func ownRunningBackupOnThePortIsNoConflict() {
        let desired = DesiredEnvironment(spec: Build.spec())
        let backup = Build.container(desired, id: "b1", name: "app-staging-backup-20260101T000000Z")
        let plan = Differ.plan(desired, host: HostState(containers: [backup], images: [:]))
        #expect(plan.action == .create)
        #expect(plan.conflicts.isEmpty)
    }
}

/// Host ports held outside the engine, as a set; records what it was asked.
final class FakeHostPorts: HostPorts, Sendable {
    let held: Set<HostAddress>
    let asked = Locked<[HostAddress]>([])

    init(_ held: Set<HostAddress>) { self.held = held }

    func inUse(_ address: HostAddress) -> Bool {
        asked.withLock { $0.append(address) }
        return held.contains(address)
    }
}

struct HostPortPlanningTests {
    let spec = Build.spec()

    @Test func aPortHeldOutsideTheEngineIsAConflictThatNamesTheWayOut() {
        let host = HostState(
            containers: [], images: [:], portsInUse: [HostAddress(bind: spec.bind, port: spec.port)])
        let plan = Differ.plan(DesiredEnvironment(spec: spec), host: host)
        #expect(plan.action == .conflict)
        #expect(
            plan.conflicts == [
                "host port \(spec.port) is in use on this host by a process that is not a container "
                    + "(binding 0.0.0.0:\(spec.port) failed). Stop that process "
                    + "(`ss -ltnp 'sport = :\(spec.port)'` names it) or choose another port."
            ])
    }

    @Test func theObserverAsksOnlyAboutPortsNoRunningContainerPublishes() async throws {
        var other = spec
        other.environment = "production"
        other.port = spec.port + 1
        var stopped = spec
        stopped.environment = "qa"
        stopped.port = spec.port + 2
        let running = Build.container(DesiredEnvironment(spec: spec))
        let exited = Build.container(DesiredEnvironment(spec: stopped), id: "c0ffee000003", state: .exited)
        let engine = FakeEngine(containers: [running, exited])
        let ports = FakeHostPorts([HostAddress(bind: "0.0.0.0", port: other.port)])

        let host = try await Observer(engine: engine, hostPorts: ports).observe([spec, other, stopped])
        #expect(host.portsInUse == [HostAddress(bind: "0.0.0.0", port: other.port)])
        #expect(
            Set(ports.asked.withLock { $0 }) == [
                HostAddress(bind: "0.0.0.0", port: other.port), HostAddress(bind: "0.0.0.0", port: stopped.port),
            ])
        // The running environment's own port is its proxy's, not a stranger's: in sync, no conflict.
        #expect(Differ.plan(DesiredEnvironment(spec: spec), host: host).action == .inSync)
        #expect(Differ.plan(DesiredEnvironment(spec: other), host: host).action == .conflict)

        let unchecked = try await Observer(engine: engine).observe([other])
        #expect(unchecked.portsInUse.isEmpty)
    }

    @Test func keptInspectionsServeWhileTheListShowsNoChangeAndNoEventTouchedTheContainer() async throws {
        let running = Build.container(DesiredEnvironment(spec: spec))
        let engine = FakeEngine(containers: [running])
        let cache = InspectionCache()
        let observer = Observer(engine: engine, inspections: cache)
        func inspects() async -> Int { await engine.calls.filter { $0.hasPrefix("inspect \(running.id)") }.count }

        _ = try await observer.observe([spec])
        _ = try await observer.observe([spec])
        #expect(await inspects() == 1, "the second look inspected again though nothing changed")
        #expect(Differ.plan(DesiredEnvironment(spec: spec), host: try await observer.observe([spec])).action == .inSync)

        // An event on the container: inspected again.
        cache.forget(running.id)
        _ = try await observer.observe([spec])
        #expect(await inspects() == 2)
        // The list shows a change (stopped): inspected again, and the plan sees it.
        try await engine.stopContainer(running.id, timeout: .seconds(1))
        let host = try await observer.observe([spec])
        #expect(await inspects() == 3)
        #expect(Differ.plan(DesiredEnvironment(spec: spec), host: host).action != .inSync)
        // After the engine came back, and once an entry is older than the limit: inspected again.
        cache.forgetAll()
        #expect(cache.count == 0)
        _ = try await observer.observe([spec])
        #expect(await inspects() == 4)
        let aged = Observer(engine: engine, inspections: InspectionCache(maxAge: .zero))
        _ = try await aged.observe([spec])
        _ = try await aged.observe([spec])
        #expect(await inspects() == 6)
    }
}
