import Foundation
import ReconcileCore
import Subprocess

/// Reads revisions by running `git` (as Argo CD does): `git log -1 -- FILE` for the last commit
/// that changed the file, `git status --porcelain -- FILE` for uncommitted changes. Arguments are
/// passed as an array, never through a shell. This is the one place reconcile starts a process.
public struct GitRevisionStore: RevisionStore {
    /// Where `git` is looked for; nil for the process's own `PATH`.
    let searchPath: String?

    public init(searchPath: String? = nil) { self.searchPath = searchPath }

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

    public func history(of file: String, limit: Int) async throws -> [FileCommit] {
        let (directory, name) = Self.split(file)
        let format = "--format=%H%x1f%aI%x1f%an%x1f%s"
        guard let log = try await git(["log", "-n", String(max(1, limit)), format, "--", name], in: directory)
        else { return [] }
        return log.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\u{1f}", maxSplits: 3, omittingEmptySubsequences: false).map(
                String.init)
            guard fields.count == 4 else { return nil }
            return FileCommit(sha: fields[0], date: fields[1], author: fields[2], subject: fields[3])
        }
    }

    public func contents(of file: String, at commits: [String]) async throws -> [String: [UInt8]] {
        guard !commits.isEmpty else { return [:] }
        let (directory, name) = Self.split(file)
        // One `git cat-file --batch` for all of them: one process, whatever the number of commits.
        let request = commits.map { "\($0):./\(name)\n" }.joined()
        guard let output = try await gitBytes(["cat-file", "--batch"], in: directory, input: request) else {
            return [:]
        }
        var result: [String: [UInt8]] = [:]
        var bytes = output[...]
        for commit in commits {
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { break }
            let header = String(decoding: bytes[bytes.startIndex..<newline], as: UTF8.self).split(separator: " ")
            bytes = bytes[(newline + 1)...]
            guard header.count == 3, header[1] == "blob", let size = Int(header[2]), bytes.count >= size else {
                continue
            }
            result[commit] = Array(bytes.prefix(size))
            bytes = bytes.dropFirst(size + 1)
        }
        return result
    }

    public func resolve(_ revision: String, for file: String) async throws -> String? {
        let (directory, _) = Self.split(file)
        guard !revision.hasPrefix("-"),
            let sha = try? await git(["rev-parse", "--verify", "--quiet", "\(revision)^{commit}"], in: directory)
        else { return nil }
        let trimmed = sha.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// `watch --git-pull`: fetches the upstream of the checkout holding `path` and fast-forwards
    /// to it. Returns what happened in one line, nil when there was nothing new. A tree with
    /// changes, a branch without upstream, or history that does not fast-forward is reported and
    /// left alone.
    public func pullFastForward(_ path: String) async -> String? {
        let directory = FileManager.default.fileExists(atPath: path + "/.") ? path : Self.split(path).directory
        do {
            guard try await git(["rev-parse", "--is-inside-work-tree"], in: directory) != nil else {
                return "git pull: \(directory) is not in a git checkout; --git-pull does nothing"
            }
            guard
                let upstream = try? await git(
                    ["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"], in: directory)
            else { return "git pull: the branch at \(directory) has no upstream; set one (git branch -u origin/main)" }
            let dirty = try await git(["status", "--porcelain", "--untracked-files=no"], in: directory) ?? ""
            _ = try await git(["fetch", "--quiet"], in: directory)
            let head = try await git(["rev-parse", "HEAD"], in: directory) ?? ""
            let target = try await git(["rev-parse", "@{upstream}"], in: directory) ?? ""
            guard head != target else { return nil }
            guard dirty.isEmpty else {
                return "git pull: \(directory) has uncommitted changes; not fast-forwarding to \(upstream.trimmed)"
            }
            guard (try? await git(["merge-base", "--is-ancestor", "HEAD", "@{upstream}"], in: directory)) != nil else {
                return "git pull: \(upstream.trimmed) does not fast-forward from HEAD (local commits?); left alone"
            }
            _ = try await git(["merge", "--ff-only", "--quiet", "@{upstream}"], in: directory)
            return
                "git pull: fast-forwarded \(head.trimmed.prefix(12)) → \(target.trimmed.prefix(12)) from \(upstream.trimmed)"
        } catch {
            return "git pull: \(error)"
        }
    }

    static func split(_ file: String) -> (directory: String, name: String) {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        return (url.deletingLastPathComponent().path, url.lastPathComponent)
    }

    /// Runs git in `directory`; its output as text, nil when it is not inside a repository.
    func git(_ arguments: [String], in directory: String) async throws -> String? {
        try await gitBytes(arguments, in: directory).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Runs git in `directory` with `input` on its standard input; its output, nil when it is not
    /// inside a repository.
    func gitBytes(_ arguments: [String], in directory: String, input: String = "") async throws -> [UInt8]? {
        let (succeeded, output, errors): (Bool, [UInt8], String)
        do {
            let descriptor = try ProcessInput.file(input)
            let result = try await run(
                .name("git"), arguments: Arguments(["-C", directory] + arguments),
                environment: .inherit.updating(
                    ["GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"].merging(searchPath.map { ["PATH": $0] } ?? [:]) { $1 }),
                input: .fileDescriptor(.init(rawValue: descriptor), closeAfterSpawningProcess: true),
                output: .bytes(limit: 64 << 20), error: .string(limit: 1 << 16))
            if case .exited(0) = result.terminationStatus { succeeded = true } else { succeeded = false }
            (output, errors) = (result.standardOutput, result.standardError)
        } catch {
            throw RevisionError("cannot run git (\(error)); install git, or the revision is not recorded")
        }
        if succeeded { return output }
        let message = errors.split(separator: "\n").first.map(String.init) ?? "failed"
        if message.contains("not a git repository") { return nil }
        // A repository without a commit yet: nothing is committed, so the file is uncommitted.
        if message.contains("does not have any commits yet") { return [] }
        if message.contains("dubious ownership") {
            throw RevisionError(
                "git refuses the repository at \(directory) (owned by another user); run "
                    + "`git config --global --add safe.directory \(directory)` to let reconcile read its revision")
        }
        throw RevisionError("git \(arguments.first ?? "") failed in \(directory): \(message)")
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
