import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 10: the messages users of the docker CLI, Terraform and Kamal meet, each with its exact text.
struct ConventionTests {
    @Test func aBareEnvironmentNameIsItsFile() async throws {
        let workspace = try Workspace()
        let staging = try workspace.write("environments/staging.yml", stagingYAML)
        let eu = try workspace.write(
            "environments/eu.yml",
            productionYAML.replacingOccurrences(of: "environment: production", with: "environment: production-eu"))
        let byFile = await reconcile(["validate", workspace.environments, "staging"])
        #expect(byFile.code == 0, "\(byFile.stderr)")
        #expect(byFile.stdout.hasPrefix("ok  \(staging): staging →"), "\(byFile.stdout)")
        #expect(byFile.stdout.contains("1 environment file valid"), "\(byFile.stdout)")
        // The file whose `environment` is the name, when no file is called so.
        let byField = await reconcile(["validate", workspace.environments, "production-eu"])
        #expect(byField.code == 0, "\(byField.stderr)")
        #expect(byField.stdout.hasPrefix("ok  \(eu): production-eu →"), "\(byField.stdout)")

        let missing = await reconcile(["validate", workspace.environments, "qa"])
        #expect(missing.code == 64)
        #expect(
            missing.stderr
                == "reconcile: error: qa: no such file or folder, and no environment named qa in \(workspace.environments); "
                + "create \(workspace.environments)/qa.yml, or name a file or folder\n")
        // A name two files answer to is refused, naming both: picking one would deploy the wrong one.
        let second = try workspace.write(
            "environments/eu2.yml",
            stagingYAML.replacingOccurrences(of: "environment: staging", with: "environment: production-eu")
                .replacingOccurrences(of: "18001", with: "18011"))
        let ambiguous = await reconcile(["validate", workspace.environments, "production-eu"])
        #expect(ambiguous.code == 64)
        #expect(
            ambiguous.stderr
                == "reconcile: error: production-eu names 2 environment files (\(eu), \(second)); name the file you mean\n"
        )
        // A near miss gets a suggestion.
        let near = await reconcile(["validate", workspace.environments, "stagin"])
        #expect(near.stderr.contains("did you mean staging? Or create"), "\(near.stderr)")

        // Alone, a name is looked up in environments/ under the current folder.
        let alone = await reconcile(["validate", "no-such-environment"])
        #expect(alone.code == 64)
        #expect(alone.stderr.contains("create environments/no-such-environment.yml"))
    }

    @Test func yamlMistakesPointAtTheLineAndSayWhatToDo() async throws {
        let workspace = try Workspace()
        let tab = try workspace.write(
            "environments/tab.yml", "service: a\nimage: b:1\nport: 18001\nhealth:\n\tpath: /h\n")
        let duplicate = try workspace.write(
            "environments/dup.yml", "service: a\nimage: b:1\nport: 18002\nimage: c:2\n")
        let memory = try workspace.write(
            "environments/mem.yml", "service: c\nimage: b:1\nport: 18003\nresources: {memory: 512}\n")
        let run = await reconcile(["validate", workspace.environments])
        #expect(run.code == 1)
        #expect(
            run.stderr == """
                \(duplicate):4:1: duplicate key "image" (first on line 2); each key may appear once
                \(memory):4:21: resources.memory: "512" has no unit; write 512m for 512 MiB (units: k, m, g; Docker would read a bare number as bytes)
                \(tab):5:1: YAML does not allow tabs for indentation; use spaces
                3 problems in 3 files; nothing was changed

                """)
    }

    @Test func aStateDirectoryThatCannotBeMadeIsOurSentence() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        let engine = FakeEngine()
        let run = await reconcile(["apply", file, "--state-dir", "/proc/reconcile-state"], engine: engine)
        #expect(run.code == 1)
        #expect(
            run.stderr
                == "reconcile: error: cannot create the state directory /proc/reconcile-state: no folder can be made "
                + "inside /proc; choose another with --state-dir\n")
    }

    @Test func containerPortThatTheImageDoesNotExposeIsAWarning() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML + "container_port: 9000\n")
        let engine = FakeEngine()
        var image = ImageSnapshot(id: "sha256:" + String(repeating: "a", count: 64), repoTags: ["acme/app:v1"])
        image.exposedPorts = [8000, 8443]
        await engine.addImage("acme/app:v1", image)
        let run = await reconcile(["diff", file], engine: engine)
        #expect(
            run.stdout.contains(
                "warning: container_port 9000 is not a port image acme/app:v1 exposes (it exposes 8000, 8443); "
                    + "set container_port to the one the server listens on"), "\(run.stdout)")
    }

    @Test func colourOnATerminalOnlyAndNeverWithNoColor() async throws {
        let workspace = try Workspace()
        let file = try workspace.write("environments/staging.yml", stagingYAML)
        func diff(_ extra: [String] = [], terminal: Bool, environment: [String: String] = [:]) async -> String {
            let engine = FakeEngine()
            let run = await runReconcile(["diff", file] + extra, environment: environment, terminal: terminal) {
                engine
            }
            return run.stdout
        }
        let coloured = await diff(terminal: true)
        #expect(coloured.contains("\u{1B}[1mstaging (\(file)) → container app-staging\u{1B}[0m"), "\(coloured)")
        #expect(coloured.contains("  \u{1B}[32m+ create app-staging\u{1B}[0m"))
        #expect(coloured.contains("  \u{1B}[32m    + image: acme/app:v1\u{1B}[0m"))
        // Not a terminal, NO_COLOR, --no-color, TERM=dumb: plain text, byte for byte what a pipe gets.
        let plain = await diff(terminal: false)
        #expect(!plain.contains("\u{1B}"))
        #expect(await diff(terminal: true, environment: ["NO_COLOR": "1"]) == plain)
        #expect(await diff(["--no-color"], terminal: true) == plain)
        #expect(await diff(terminal: true, environment: ["TERM": "dumb"]) == plain)
        // JSON and markdown are never coloured.
        #expect(!(await diff(["--format", "json"], terminal: true)).contains("\u{1B}"))
    }

    @Test func helpListsEveryExitCodeOnALineOfItsOwn() async {
        let help = await reconcile(["help"])
        #expect(help.code == 0)
        let lines = help.stdout.split(separator: "\n").map(String.init)
        for code in ["0", "1", "2", "3", "4", "5", "6", "7", "64", "130"] {
            #expect(lines.contains { $0.hasPrefix("  \(code) ") }, "exit code \(code) in `reconcile help`")
        }
        // Wrapped at 80 columns, a line that is too long would spill into the next: none does.
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(help.stdout)")
        #expect(help.stdout.contains("143: SIGTERM, 129: SIGHUP"))
        #expect(ExitCodes.usage == 64)
    }
}
