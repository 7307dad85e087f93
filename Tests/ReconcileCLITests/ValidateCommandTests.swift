import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

struct ValidateCommandTests {
    @Test func validFolderPasses() async throws {
        let workspace = try Workspace()
        try workspace.write("environments/staging.yml", stagingYAML)
        try workspace.write("environments/production.yml", productionYAML)
        let run = await reconcile(["validate", workspace.environments])
        #expect(run.code == 0)
        let dir = workspace.environments
        #expect(
            run.stdout == """
                ok  \(dir)/production.yml: production → container app-production, port 0.0.0.0:18000, image acme/app:v1
                ok  \(dir)/staging.yml: staging → container app-staging, port 0.0.0.0:18001, image acme/app:v1
                2 environment files valid

                """)
        #expect(run.stderr.isEmpty)
    }

    @Test func everyProblemInEveryFileIsReported() async throws {
        let workspace = try Workspace()
        let bad = try workspace.write("environments/bad.yml", "service: app\nimage: acme/app\nport: 99999\nhelth: {}\n")
        let empty = try workspace.write("environments/empty.yml", "")
        let run = await reconcile(["validate", workspace.environments])
        #expect(run.code == 1)
        #expect(run.stdout.isEmpty)
        #expect(
            run.stderr == """
                \(bad):3:7: port: must be between 1 and 65535, got 99999
                \(bad):4:1: helth: unknown key "helth"; did you mean "health"?
                \(empty):1:1: file is empty; an environment needs at least service, image and port
                3 problems in 2 files; nothing was changed

                """)
    }

    @Test func twoEnvironmentsOnOnePortAreRefused() async throws {
        let workspace = try Workspace()
        try workspace.write("environments/a.yml", stagingYAML)
        let copy = try workspace.write(
            "environments/b.yml", stagingYAML.replacingOccurrences(of: "staging", with: "qa"))
        let run = await reconcile(["validate", workspace.environments])
        #expect(run.code == 1)
        #expect(run.stderr.hasPrefix("\(copy):4:7: port: host port 18001 is also used by"))
    }

    @Test func missingPathIsAOneLineError() async {
        let run = await reconcile(["validate", "/nonexistent/envs"])
        #expect(run.code == 64)
        #expect(run.stderr == "reconcile: error: /nonexistent/envs: no such file or folder\n")
    }

    @Test func folderWithoutEnvironmentFiles() async throws {
        let workspace = try Workspace()
        let run = await reconcile(["validate", workspace.environments])
        #expect(run.code == 64)
        #expect(run.stderr.contains("no environment files (*.yml, *.yaml) in this folder"))
    }

    @Test func versionAndHelp() async {
        let version = await reconcile(["version"])
        #expect(version.code == 0)
        #expect(version.stdout.hasPrefix("reconcile 0.1.0 (commit "))
        let flag = await reconcile(["--version"])
        #expect(flag.code == 0)
        #expect(flag.stdout == version.stdout)
        let help = await reconcile(["--help"])
        #expect(help.code == 0)
        #expect(help.stdout.contains("SUBCOMMANDS:"))
        #expect(help.stdout.contains("diff"))
        let unknown = await reconcile(["deploy"])
        #expect(unknown.code == 64, "a usage error is EX_USAGE, not 1 (which means nothing changed)")
        #expect(unknown.stderr.contains("Unexpected argument 'deploy'"))
        let timeout = await reconcile(["apply", "--lock-timeout", "9999999h"])
        #expect(timeout.code == 64)
        #expect(timeout.stderr.contains("--lock-timeout expects a duration like 30s or 5m, at most 24h"))
    }
}
