import Foundation
import ReconcileCore
import ReconcileSystem
import ReconcileTestSupport
import Testing

struct DiffCommandTests {
    let image = ImageSnapshot(id: "sha256:1111")

    func staged(_ yaml: String = stagingYAML, file: String) throws -> DesiredEnvironment {
        let spec = try SpecParser.parse(Array(yaml.utf8), file: file, defaultEnvironment: "staging").get().spec
        return DesiredEnvironment(spec: spec)
    }

    @Test func createPlanAsText() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let engine = FakeEngine(images: ["acme/app:v1": image])
        let run = await reconcile(["diff", file], engine: engine)
        #expect(run.code == 2)
        #expect(
            run.stdout == """
                staging (\(file)) → container app-staging
                  + create app-staging
                      + image: acme/app:v1
                      + ports: 0.0.0.0:18001->8000/tcp
                      + env.LOG_LEVEL: info
                      + restart: unless-stopped
                      + stop_timeout: 10s

                Plan: 1 to create, 0 to replace, 0 to start, 0 to remove, 0 in sync, 0 in conflict.

                """)
        #expect(await engine.mutatingCalls.isEmpty)
        #expect(await engine.calls.last == "shutdown")
    }

    @Test func inSyncExitsZero() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let engine = FakeEngine(containers: [Build.container(try staged(file: file))], images: ["acme/app:v1": image])
        let run = await reconcile(["diff", file], engine: engine)
        #expect(run.code == 0)
        #expect(run.stdout.contains("  = in sync (c0ffee000001)\n"))
        #expect(
            run.stdout.hasSuffix(
                "Plan: 0 to create, 0 to replace, 0 to start, 0 to remove, 1 in sync, 0 in conflict.\n"))
    }

    @Test func replaceShowsFieldChangesAndApproval() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/production.yml", productionYAML)
        let old = try staged(productionYAML.replacingOccurrences(of: "v1", with: "v0"), file: file)
        let engine = FakeEngine(containers: [Build.container(old)], images: ["acme/app:v1": image])
        let run = await reconcile(["diff", file], engine: engine)
        #expect(run.code == 2)
        #expect(
            run.stdout.contains("  ~ replace app-production (c0ffee000001)\n      ~ image: acme/app:v0 → acme/app:v1\n")
        )
        #expect(run.stdout.contains("  approval required: apply needs --approve\n"))
        #expect(await engine.mutatingCalls.isEmpty)
    }

    @Test func conflictExitsOne() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let engine = FakeEngine(
            containers: [Build.foreign(name: "squatter", port: 18001)], images: ["acme/app:v1": image])
        let run = await reconcile(["diff", file], engine: engine)
        #expect(run.code == 1)
        #expect(run.stdout.contains("! conflict: apply will refuse to change app-staging"))
        #expect(run.stdout.contains(#"host port 18001 is published by container "squatter""#))
    }

    @Test func jsonIsMachineReadableOnStdout() async throws {
        let workspace = try Workspace()
        try workspace.write("environments/staging.yml", stagingYAML)
        try workspace.write("environments/production.yml", productionYAML)
        let staging = try staged(file: "\(workspace.environments)/staging.yml")
        let engine = FakeEngine(containers: [Build.container(staging, state: .exited)], images: ["acme/app:v1": image])
        let run = await reconcile(["diff", "--format", "json", workspace.environments], engine: engine)
        #expect(run.code == 2)
        #expect(run.stderr.isEmpty)
        struct Document: Decodable {
            struct Plan: Decodable {
                var environment: String
                var action: String
                var approvalRequired: Bool
            }
            var summary: [String: Int]
            var inSync: Bool
            var environments: [Plan]
        }
        let document = try JSONDecoder().decode(Document.self, from: Data(run.stdout.utf8))
        #expect(document.environments.map(\.environment) == ["production", "staging"])
        #expect(document.environments.map(\.action) == ["create", "start"])
        #expect(document.environments.map(\.approvalRequired) == [true, false])
        #expect(document.summary["create"] == 1 && document.summary["start"] == 1)
        #expect(!document.inSync)
    }

    @Test func markdownForAPullRequest() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let run = await reconcile(["diff", "--format", "markdown", file], engine: FakeEngine())
        #expect(run.code == 2)
        #expect(
            run.stdout.hasPrefix("### reconcile plan\n\n| environment | file | action | changes |\n|---|---|---|---|\n")
        )
        #expect(run.stdout.contains("| staging | `\(file)` | **create** | 5 |"))
        #expect(run.stdout.contains("```diff\n+ image: acme/app:v1\n"))
        #expect(run.stdout.contains("> ⚠️ image acme/app:v1 is not on this host; apply will pull it"))
    }

    @Test func engineDownIsOneLineAndExitOne() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let run = await reconcile(["diff", file], engine: nil)
        #expect(run.code == 1)
        #expect(run.stdout.isEmpty)
        #expect(
            run.stderr
                == "reconcile: error: cannot reach the Docker engine at unix:///var/run/docker.sock (no socket at /var/run/docker.sock); is dockerd running, or is DOCKER_HOST set?\n"
        )
    }

    @Test func invalidFileNeverReachesTheEngine() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", "service: app\n")
        let engine = FakeEngine()
        let run = await reconcile(["diff", file], engine: engine)
        #expect(run.code == 1)
        #expect(run.stderr.contains("image: required"))
        #expect(await engine.calls.isEmpty)
    }

    @Test func secretsComeFromTheEnvironmentOrSecretsFileAndAreNeverPrinted() async throws {
        let workspace = try Workspace()
        let yaml = stagingYAML + "secrets: [API_TOKEN, DB_PASSWORD]\nsecrets_file: staging.env\n"
        let file = try workspace.write("environments/staging.yml", yaml)
        try workspace.write("environments/staging.env", "# secrets\nexport DB_PASSWORD='pa55word'\n")
        let engine = FakeEngine(images: ["acme/app:v1": image])
        // The host's fingerprint key lives in the state directory: made by apply, only read by diff.
        let state = workspace.root.appendingPathComponent("state").path
        _ = try FileStateStore(path: state).fingerprintKey(create: true)
        let run = await reconcile(
            ["diff", file], engine: engine, environment: ["API_TOKEN": "t0ken-value", "RECONCILE_STATE_DIR": state])
        #expect(run.code == 2)
        #expect(!run.stdout.contains("pa55word") && !run.stdout.contains("t0ken-value"))
        #expect(!run.stdout.contains("not available"))
        #expect(run.stdout.contains("+ secrets.API_TOKEN: (hmac:"))

        // Without the key (CI), the values cannot be compared, and diff says so.
        let keyless = await reconcile(
            ["diff", file], engine: engine,
            environment: ["API_TOKEN": "t0ken-value", "RECONCILE_STATE_DIR": state + "-none"])
        #expect(keyless.stdout.contains("warning: no fingerprint key here"))
        #expect(!FileManager.default.fileExists(atPath: state + "-none"), "diff must not create a state directory")

        try FileManager.default.removeItem(atPath: "\(workspace.environments)/staging.env")
        let missing = await reconcile(["diff", file], engine: engine)
        #expect(
            missing.stdout.contains(
                "warning: cannot read secrets_file \(workspace.environments)/staging.env: no such file"))
        #expect(missing.stdout.contains("warning: secrets API_TOKEN, DB_PASSWORD not available here"))
    }
}

/// Found by attacking: a value could close the markdown fence of a PR comment, or draw over a
/// terminal line with a carriage return and ESC.
struct OutputInjectionTests {
    @Test func valuesCannotBreakOutOfTheirLine() async throws {
        let workspace = try Workspace()
        let yaml = stagingYAML.replacingOccurrences(
            of: "env: {LOG_LEVEL: info}",
            with: #"env: {X: "ok\n```\n# PWNED", E: "\e[31mRED\r+ image: evil"}"#)
        let file = try workspace.write("environments/staging.yml", yaml)
        let engine = FakeEngine(images: ["acme/app:v1": ImageSnapshot(id: "sha256:1111")])
        let text = await reconcile(["diff", file], engine: engine)
        #expect(text.stdout.contains(#"+ env.E: \e[31mRED\r+ image: evil"#), "\(text.stdout)")
        #expect(!text.stdout.contains("\u{1B}") && !text.stdout.contains("\r"))
        let markdown = await reconcile(["diff", "--format", "markdown", file], engine: engine)
        #expect(markdown.stdout.contains("````diff"), "\(markdown.stdout)")
        #expect(!markdown.stdout.contains("\n# PWNED"))
    }
}

struct StatusCommandTests {
    @Test func tableAndJSON() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        try workspace.write("environments/production.yml", productionYAML)
        let spec = try SpecParser.parse(Array(stagingYAML.utf8), file: file, defaultEnvironment: "staging").get().spec
        let desired = DesiredEnvironment(spec: spec)
        var active = Build.container(desired)
        active.startedAt = Date(timeIntervalSince1970: 1_700_000_000)
        active.health = "healthy"
        active.labels[Labels.revision] = "0123456789abcdef"
        let backup = Build.container(
            desired, id: "b1", state: .exited, name: "app-staging-backup-1")
        let engine = FakeEngine(
            containers: [active, backup],
            images: ["sha256:1111": ImageSnapshot(id: "sha256:1111", repoDigests: ["acme/app@sha256:abcdef0123456789"])]
        )
        // A hold left by a rollback and a desired state that failed show in the note.
        let state = workspace.root.appendingPathComponent("state").path
        let store = try FileStateStore(path: state)
        try store.saveHold(
            Hold(
                container: "app-staging", revision: "fedcba9876543210", imageID: nil, since: "2026-11-27T10:00:00Z",
                from: nil))
        try store.saveFailedDeploy(
            FailedDeploy(
                container: "app-production", identity: "x", revision: "abcabcabcabc", time: "2026-11-27T11:00:00Z",
                reason: "health"))
        let table = await reconcile(
            ["status", workspace.environments], engine: engine, environment: ["RECONCILE_STATE_DIR": state])
        #expect(table.code == 0)
        #expect(
            table.stdout == """
                ENVIRONMENT  CONTAINER       STATE    HEALTH   IMAGE        DIGEST               UPTIME  REVISION      BACKUPS  NOTE
                production   app-production  missing  -        -            -                    -       -             0        revision abcabcabcabc failed at 2026-11-27T11:00:00Z
                staging      app-staging     running  healthy  acme/app:v1  sha256:abcdef012345  10m0s   0123456789ab  1        held at fedcba987654 since 2026-11-27T10:00:00Z (rollback)

                """)
        let json = await reconcile(
            ["status", "--format", "json", file], engine: engine, environment: ["RECONCILE_STATE_DIR": state])
        #expect(json.code == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let rows = try #require(object?["environments"] as? [[String: Any]])
        #expect(rows.first?["uptimeSeconds"] as? Int == 600)
        #expect((rows.first?["backups"] as? [Any])?.count == 1)
        #expect(await engine.mutatingCalls.isEmpty)
    }

    @Test func unmanagedContainerIsShownAsSuch() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let engine = FakeEngine(containers: [Build.foreign(name: "app-staging")])
        let run = await reconcile(["status", file], engine: engine)
        #expect(run.code == 0)
        #expect(run.stdout.contains("unmanaged (running)"))
    }
}
