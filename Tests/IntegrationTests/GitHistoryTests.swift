import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 9 on a real repository and the real engine: history, rollback to the bytes a revision
/// ran, the hold that keeps cron from undoing it, and what lifts it.
@Suite(.timeLimit(.minutes(3)))
struct GitHistoryTests {
    /// A repository in the scene's workspace, with commits by a fixed author.
    struct Repository {
        let root: String

        @discardableResult
        func git(_ arguments: [String]) throws -> String {
            // A log of its own: "\(root)/../git.log" was /tmp/git.log, shared by the tests running beside
            // it, and one test read another's `rev-parse` output (an empty sha, seen in CI).
            let log = NSTemporaryDirectory() + "reconcile-git-\(UUID().uuidString).log"
            defer { try? FileManager.default.removeItem(atPath: log) }
            let status = Spawn.wait(
                try Spawn.start(
                    "/usr/bin/env",
                    [
                        "GIT_AUTHOR_NAME=Ann", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=Ann",
                        "GIT_COMMITTER_EMAIL=a@example.com", "git", "-C", root,
                    ] + arguments,
                    output: log))
            let output = try String(contentsOfFile: log, encoding: .utf8)
            guard status == 0 else { throw FixtureError("git \(arguments.joined(separator: " ")): \(output)") }
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func historyRollbackHoldAndRelease() async throws {
        try await ApplyIntegrationTests().scene { scene in
            let repository = Repository(root: scene.workspace.root.path)
            let file = "\(scene.workspace.environments)/staging.yml"
            // A tag of the test's own that will move: it points at v1's bytes first.
            let tag = "\(scene.fixture.runID)/app:latest"
            #expect(
                await Spawn.finished(try Spawn.start("/usr/bin/env", ["docker", "tag", "reconcile-fixture:v1", tag]))
                    == 0)
            defer {
                if let pid = try? Spawn.start("/usr/bin/env", ["docker", "rmi", tag]) { _ = Spawn.wait(pid) }
            }
            func write(_ image: String) throws {
                try scene.workspace.write(
                    "environments/staging.yml",
                    scene.fixture.yaml(image: image, port: scene.port, extra: ApplyIntegrationTests.fastGate))
            }
            try repository.git(["init", "-q"])
            try write(tag)
            try repository.git(["add", "."])
            try repository.git(["commit", "-qm", "staging on latest"])
            let first = try repository.git(["rev-parse", "HEAD"])
            #expect(await scene.apply().code == 0)
            let labels = try await scene.fixture.engine.inspectContainer(scene.name)?.labels ?? [:]
            #expect(labels[Labels.revision] == first)
            #expect(labels[Labels.dirty] == nil)

            // latest moves to v2 and a commit changes the file: apply runs v2.
            #expect(
                await Spawn.finished(try Spawn.start("/usr/bin/env", ["docker", "tag", "reconcile-fixture:v2", tag]))
                    == 0)
            try write(tag + "\nenv: {RELEASE: two}")
            try repository.git(["commit", "-qam", "staging: release two"])
            let second = try repository.git(["rev-parse", "HEAD"])
            #expect(await scene.apply().code == 0)
            #expect(try await scene.health().contains(#""version":"v2""#))

            let history = await scene.fixture.run(["history", file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(history.code == 0, "\(history.stderr)")
            let lines = history.stdout.split(separator: "\n").map(String.init)
            #expect(lines[1].hasPrefix("*  \(second.prefix(12))"), "\(history.stdout)")
            #expect(lines[1].contains("converged") && lines[1].contains("staging: release two"))
            #expect(lines[2].hasPrefix("   \(first.prefix(12))") && lines[2].contains(tag))

            // Rollback goes back to the first revision and the bytes it ran (v1), although latest is v2 now.
            let rollback = await scene.fixture.run(
                ["rollback", file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(rollback.code == 0, "\(rollback.stdout)\(rollback.stderr)")
            #expect(rollback.stdout.contains("rolling back from \(second.prefix(12)) to \(first.prefix(12))"))
            #expect(rollback.stdout.contains("To make it permanent in git: git revert --no-edit \(second.prefix(12))"))
            #expect(try await scene.health().contains(#""version":"v1""#))
            #expect(try await scene.fixture.engine.inspectContainer(scene.name)?.labels[Labels.revision] == first)

            // The hold survives repeated applies (cron), which neither touch v1 nor say in sync falsely.
            for _ in 0..<3 {
                let held = await scene.apply()
                #expect(held.code == 0)
                #expect(held.stdout.contains("staging: hold held at \(first.prefix(12))"), "\(held.stdout)")
                #expect(try await scene.health().contains(#""version":"v1""#))
            }
            let diff = await scene.fixture.run(["diff", file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(diff.code == 0 && diff.stdout.contains("warning: held at \(first.prefix(12))"), "\(diff.stdout)")

            // --release lifts it: the next apply runs the file as it is (v2 on latest).
            let release = await scene.fixture.run(
                ["rollback", "--release", file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(release.code == 0 && release.stdout.contains("released the hold at \(first.prefix(12))"))
            #expect(await scene.apply().code == 0)
            #expect(try await scene.health().contains(#""version":"v2""#))

            // `git revert` of the second commit brings back the first content: apply runs the bytes it
            // ran then (v1), not what latest points at now (v2), and records the revert commit.
            try repository.git(["revert", "--no-edit", second])
            let reverted = await scene.apply()
            #expect(reverted.code == 0, "\(reverted.stderr)")
            #expect(
                reverted.stdout.contains("this content ran before (revision \(first.prefix(12)))"), "\(reverted.stdout)"
            )
            #expect(try await scene.health().contains(#""version":"v1""#))
            let head = try repository.git(["rev-parse", "HEAD"])
            #expect(try await scene.fixture.engine.inspectContainer(scene.name)?.labels[Labels.revision] == head)
        }
    }

    /// A rollback whose image is gone from the host pulls the exact bytes by the registry digest
    /// the journal recorded, not the tag (which has moved); with neither, it refuses.
    @Test func aRollbackPullsTheImageItRanByDigest() async throws {
        try await ApplyIntegrationTests().scene { scene in
            let registry = try await Registry.start(port: try scene.fixture.freePort(), runID: scene.fixture.runID)
            defer { registry.stop() }
            let repository = Repository(root: scene.workspace.root.path)
            let file = "\(scene.workspace.environments)/staging.yml"
            let tag = registry.reference("latest")
            func write(_ extra: String) throws {
                try scene.workspace.write(
                    "environments/staging.yml",
                    scene.fixture.yaml(image: tag, port: scene.port, extra: ApplyIntegrationTests.fastGate + extra))
            }
            try registry.publish("reconcile-fixture:v1", as: "latest")
            try repository.git(["init", "-q"])
            try write("\nbackups: 0")
            try repository.git(["add", "."])
            try repository.git(["commit", "-qm", "v1 from the registry"])
            let first = try repository.git(["rev-parse", "HEAD"])
            #expect(await scene.apply().code == 0)
            let v1 = try #require(try await scene.fixture.engine.inspectContainer(scene.name)?.imageID)

            try registry.publish("reconcile-fixture:v2", as: "latest")
            try write("\nbackups: 0\npull: always")
            try repository.git(["commit", "-qam", "latest moved"])
            #expect(await scene.apply().code == 0)
            #expect(try await scene.health().contains(#""version":"v2""#))
            // v1's bytes are gone from the host (the backup was pruned, the image removed).
            #expect(await Spawn.finished(try Spawn.start("/usr/bin/env", ["docker", "rmi", "-f", v1])) == 0)

            let rollback = await scene.fixture.run(
                ["rollback", "--to", first, file], environment: ["RECONCILE_STATE_DIR": scene.state])
            #expect(rollback.code == 0, "\(rollback.stdout)\(rollback.stderr)")
            #expect(
                rollback.stdout.contains(
                    "staging: pull pulled \(registry.reference("latest").split(separator: ":").dropLast().joined(separator: ":"))@sha256:"
                ), "\(rollback.stdout)")
            #expect(try await scene.health().contains(#""version":"v1""#))
            #expect(try await scene.fixture.engine.inspectContainer(scene.name)?.imageID == v1)
        }
    }
}
