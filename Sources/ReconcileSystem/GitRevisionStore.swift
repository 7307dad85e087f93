import Foundation
import ReconcileCore
import Subprocess

/// Reads revisions by running `git` (as Argo CD does): `git log -1 -- FILE` for the last commit
/// that changed the file, `git status --porcelain -- FILE` for uncommitted changes. Arguments are
/// passed as an array, never through a shell. This is the one place reconcile starts a process.
public struct GitRevisionStore: RevisionStore {
    public init() {}

    public func revision(of file: String) async throws -> FileRevision? {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        guard let log = try await git(["log", "-1", "--format=%H", "--", name], in: directory) else { return nil }
        guard let status = try await git(["status", "--porcelain", "--", name], in: directory) else { return nil }
        let commit = log.trimmingCharacters(in: .whitespacesAndNewlines)
        let dirty = !status.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        return FileRevision(commit: commit.isEmpty ? nil : commit, dirty: dirty || commit.isEmpty)
    }

    /// Runs git in `directory`; nil when it is not inside a repository.
    func git(_ arguments: [String], in directory: String) async throws -> String? {
        let (succeeded, output, errors): (Bool, String, String)
        do {
            let result = try await run(
                .name("git"), arguments: Arguments(["-C", directory] + arguments),
                environment: .inherit.updating(["GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"]),
                output: .string(limit: 1 << 20), error: .string(limit: 1 << 16))
            if case .exited(0) = result.terminationStatus { succeeded = true } else { succeeded = false }
            (output, errors) = (result.standardOutput ?? "", result.standardError ?? "")
        } catch {
            throw RevisionError("cannot run git (\(error)); install git, or the revision is not recorded")
        }
        if succeeded { return output }
        let message = errors.split(separator: "\n").first.map(String.init) ?? "failed"
        if message.contains("not a git repository") { return nil }
        // A repository without a commit yet: nothing is committed, so the file is uncommitted.
        if message.contains("does not have any commits yet") { return "" }
        if message.contains("dubious ownership") {
            throw RevisionError(
                "git refuses the repository at \(directory) (owned by another user); run "
                    + "`git config --global --add safe.directory \(directory)` to let reconcile read its revision")
        }
        throw RevisionError("git \(arguments.first ?? "") failed in \(directory): \(message)")
    }
}
