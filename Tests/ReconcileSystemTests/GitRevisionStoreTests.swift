import Foundation
import ReconcileCore
import ReconcileSystem
import ReconcileTestSupport
import Testing

/// Issue 9: the revision of an environment file is the commit that last changed it, read by
/// running git, and whether it has changes not committed.
struct GitRevisionStoreTests {
    /// Runs git in `directory` (for setting up the repository only), with Spawn: Foundation's
    /// Process reaped the children of the GitRevisionStore under test ("No child processes").
    @discardableResult
    static func git(_ arguments: [String], in directory: String) throws -> String {
        let log = NSTemporaryDirectory() + "reconcile-git-setup-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = Spawn.wait(
            try Spawn.start(
                "/usr/bin/env",
                [
                    "GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=Test",
                    "GIT_COMMITTER_EMAIL=t@example.com", "git", "-C", directory,
                ] + arguments, output: log))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw SpawnError("git \(arguments.joined(separator: " ")) failed: \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theLastCommitThatChangedTheFileAndWhetherItIsDirty() async throws {
        let root = NSTemporaryDirectory() + "reconcile-git-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/environments", withIntermediateDirectories: true)
        let file = root + "/environments/staging.yml"
        let store = GitRevisionStore()
        #expect(try await store.revision(of: file) == nil, "outside a repository there is no revision")

        try Self.git(["init", "-q"], in: root)
        try "image: a:v1\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await store.revision(of: file) == FileRevision(commit: nil, dirty: true))
        try Self.git(["add", "."], in: root)
        try Self.git(["commit", "-qm", "staging v1"], in: root)
        let first = try Self.git(["rev-parse", "HEAD"], in: root)
        #expect(try await store.revision(of: file) == FileRevision(commit: first, dirty: false))

        // A commit that does not touch the file leaves its revision where it was.
        try "x\n".write(toFile: root + "/README", atomically: true, encoding: .utf8)
        try Self.git(["add", "."], in: root)
        try Self.git(["commit", "-qm", "readme"], in: root)
        #expect(try await store.revision(of: file)?.commit == first)

        try "image: a:v2\n".write(toFile: file, atomically: true, encoding: .utf8)
        let dirty = try await store.revision(of: file)
        #expect(dirty == FileRevision(commit: first, dirty: true))
        #expect(dirty?.short == String(first.prefix(12)) + "+dirty")
    }

    @Test func gitMissingIsOneClearLine() async throws {
        let store = GitRevisionStore(searchPath: "/nonexistent")
        await #expect {
            _ = try await store.revision(of: NSTemporaryDirectory() + "staging.yml")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("cannot run git (")
                && text.hasSuffix("); install git, or the revision is not recorded")
                && !text.contains("\n")
        }
    }

    @Test func gitPullFastForwardsAndLeavesEverythingElseAlone() async throws {
        let root = NSTemporaryDirectory() + "reconcile-pull-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Self.git(["init", "-q", "--bare", "-b", "main", "\(root)/remote.git"], in: root)
        try Self.git(["clone", "-q", "\(root)/remote.git", "\(root)/ci"], in: root)
        try "image: a:v1\n".write(toFile: "\(root)/ci/staging.yml", atomically: true, encoding: .utf8)
        try Self.git(["add", "."], in: "\(root)/ci")
        try Self.git(["commit", "-qm", "v1"], in: "\(root)/ci")
        try Self.git(["push", "-q", "origin", "HEAD:main"], in: "\(root)/ci")
        try Self.git(["clone", "-q", "\(root)/remote.git", "\(root)/host"], in: root)
        let store = GitRevisionStore()
        let host = "\(root)/host"
        #expect(await store.pullFastForward(host) == nil, "nothing new: nothing to say")

        func push(_ text: String) throws {
            try text.write(toFile: "\(root)/ci/staging.yml", atomically: true, encoding: .utf8)
            try Self.git(["commit", "-qam", text], in: "\(root)/ci")
            try Self.git(["push", "-q", "origin", "HEAD:main"], in: "\(root)/ci")
        }
        try push("image: a:v2\n")
        // A change not committed on the host: reported, not merged over.
        try "image: a:local\n".write(toFile: "\(host)/staging.yml", atomically: true, encoding: .utf8)
        let dirty = await store.pullFastForward(host)
        #expect(dirty?.contains("uncommitted changes") == true, "\(dirty ?? "nil")")
        try Self.git(["checkout", "--", "staging.yml"], in: host)
        let pulled = await store.pullFastForward(host)
        #expect(pulled?.contains("fast-forwarded") == true, "\(pulled ?? "nil")")
        #expect(try String(contentsOfFile: "\(host)/staging.yml", encoding: .utf8) == "image: a:v2\n")

        // A local commit and a new upstream one: history that does not fast-forward is left alone.
        try "image: a:mine\n".write(toFile: "\(host)/staging.yml", atomically: true, encoding: .utf8)
        try Self.git(["commit", "-qam", "mine"], in: host)
        try push("image: a:v3\n")
        let diverged = await store.pullFastForward(host)
        #expect(diverged?.contains("does not fast-forward") == true, "\(diverged ?? "nil")")
        #expect(try String(contentsOfFile: "\(host)/staging.yml", encoding: .utf8) == "image: a:mine\n")

        let outside = await store.pullFastForward(NSTemporaryDirectory())
        #expect(outside?.contains("not in a git checkout") == true, "\(outside ?? "nil")")
    }
}
