import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// `reconcile diff` and `status` in-process against the real engine.
struct DiffIntegrationTests {
    @Test func diffFollowsTheEngineThroughCreateSyncReplaceAndStart() async throws {
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let port = try fixture.freePort()
            let file = try workspace.write(
                "environments/staging.yml", fixture.yaml(port: port, extra: "env: {LOG_LEVEL: info}"))

            let create = await fixture.run(["diff", file])
            #expect(create.code == 2)
            #expect(create.stdout.contains("+ create \(fixture.service)-staging"))
            #expect(create.stderr.isEmpty)

            var spec = fixture.spec(port: port, file: file)
            spec.env = ["LOG_LEVEL": "info"]
            let id = try await fixture.stage(DesiredEnvironment(spec: spec))
            let sync = await fixture.run(["diff", file])
            #expect(sync.code == 0)
            #expect(sync.stdout.contains("= in sync (\(id.prefix(12)))"))

            try workspace.write("environments/staging.yml", fixture.yaml(port: port, extra: "env: {LOG_LEVEL: debug}"))
            let replace = await fixture.run(["diff", file])
            #expect(replace.code == 2)
            #expect(
                replace.stdout.contains(
                    "~ replace \(fixture.service)-staging (\(id.prefix(12)))\n      ~ env.LOG_LEVEL: info → debug\n"))

            try workspace.write("environments/staging.yml", fixture.yaml(port: port, extra: "env: {LOG_LEVEL: info}"))
            try await fixture.engine.stopContainer(id, timeout: .seconds(2))
            let start = await fixture.run(["diff", file])
            #expect(start.code == 2)
            #expect(start.stdout.contains("> start \(fixture.service)-staging"))
            #expect(start.stdout.contains("~ state: exited → running"))
        }
    }

    @Test func diffChangesNothingOnTheEngine() async throws {
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let port = try fixture.freePort()
            let file = try workspace.write("environments/staging.yml", fixture.yaml(port: port, extra: "env: {A: b}"))
            // A stopped, outdated container: diff has a start and a replace to propose, and must do neither.
            try await fixture.stage(DesiredEnvironment(spec: fixture.spec(port: port, file: file)), start: false)
            let before = try await fixture.containers()

            let stream = fixture.engine.events()
            let runID = fixture.runID
            let watcher = Task {
                var seen: [String] = []
                for try await event in stream where event.name?.hasPrefix(runID) == true { seen.append(event.action) }
                return seen
            }
            try await Task.sleep(for: .milliseconds(200))
            for format in ["text", "json", "markdown"] {
                let run = await fixture.run(["diff", "--format", format, file])
                #expect(run.code == 2)
            }
            let status = await fixture.run(["status", file])
            #expect(status.code == 0)
            try await Task.sleep(for: .milliseconds(500))
            watcher.cancel()
            let events = try await watcher.value
            #expect(events.isEmpty, "diff and status caused engine events: \(events)")
            let after = try await fixture.containers()
            #expect(after == before)
        }
    }

    @Test func containersWeDoNotManageAreConflicts() async throws {
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let port = try fixture.freePort()
            let file = try workspace.write("environments/staging.yml", fixture.yaml(port: port))
            try await fixture.foreign(name: "\(fixture.service)-staging", port: try fixture.freePort())
            let byName = await fixture.run(["diff", file])
            #expect(byName.code == 1)
            #expect(byName.stdout.contains(#"container "\#(fixture.service)-staging" ("#))
            #expect(byName.stdout.contains("was not created by reconcile; reconcile will not touch it."))

            let otherPort = try fixture.freePort()
            let other = try workspace.write("environments/qa.yml", fixture.yaml(environment: "qa", port: port))
            try await fixture.foreign(name: "\(fixture.runID)-squatter", port: port)
            _ = otherPort
            let byPort = await fixture.run(["diff", other])
            #expect(byPort.code == 1)
            #expect(
                byPort.stdout.contains(#"host port \#(port) is published by container "\#(fixture.runID)-squatter""#))
        }
    }

    @Test func statusReportsWhatRuns() async throws {
        try await EngineFixture.with { fixture in
            let workspace = try Workspace()
            let port = try fixture.freePort()
            let file = try workspace.write("environments/staging.yml", fixture.yaml(port: port))
            let spec = fixture.spec(port: port, file: file)
            try await fixture.stage(
                DesiredEnvironment(spec: spec), name: "\(spec.containerName)-backup-1",
                start: false)
            try await fixture.stage(DesiredEnvironment(spec: spec))
            let image = try #require(try await fixture.engine.inspectImage("reconcile-fixture:v1"))

            let run = await fixture.run(["status", "--format", "json", file])
            #expect(run.code == 0)
            let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            let row = try #require((object?["environments"] as? [[String: Any]])?.first)
            #expect(row["state"] as? String == "running")
            #expect(row["managed"] as? Bool == true)
            #expect(row["image"] as? String == "reconcile-fixture:v1")
            // The registry digest when the image has one, else its id (fixtures are built locally).
            #expect(row["digest"] as? String == image.digest)
            #expect((row["uptimeSeconds"] as? Int).map { $0 >= 0 && $0 < 60 } == true)
            #expect((row["backups"] as? [[String: Any]])?.first?["name"] as? String == "\(spec.containerName)-backup-1")

            let table = await fixture.run(["status", file])
            #expect(table.stdout.contains("\(spec.containerName)  running"))
        }
    }
}
