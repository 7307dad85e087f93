/// Where an environment file stands in git: the commit that last changed it and whether it has
/// changes not committed yet.
public struct FileRevision: Sendable, Equatable, Codable {
    /// The last commit that changed the file; nil for a file git does not track yet.
    public var commit: String?
    /// The file differs from that commit (or is not committed at all).
    public var dirty: Bool

    public init(commit: String?, dirty: Bool) {
        self.commit = commit
        self.dirty = dirty
    }

    /// `abc123def456`, `abc123def456+dirty`, or `uncommitted`.
    public var short: String {
        guard let commit else { return "uncommitted" }
        return String(commit.prefix(12)) + (dirty ? "+dirty" : "")
    }
}

/// Reads an environment file's history from git. `GitRevisionStore` runs the `git` command (no
/// shell, arguments as an array); `FakeRevisionStore` keeps commits in memory.
public protocol RevisionStore: Sendable {
    /// The file's revision; nil outside a repository. Throws `RevisionError` when git cannot be
    /// asked (not installed, refuses the repository).
    func revision(of file: String) async throws -> FileRevision?
    /// The commits that changed the file, newest first, at most `limit`.
    func history(of file: String, limit: Int) async throws -> [FileCommit]
    /// The file's content at each commit; a commit where the file did not exist is left out.
    func contents(of file: String, at commits: [String]) async throws -> [String: [UInt8]]
    /// The full commit id a revision (`HEAD~2`, a short sha, a tag) names; nil when it names none.
    func resolve(_ revision: String, for file: String) async throws -> String?
}

/// One commit that changed an environment file.
public struct FileCommit: Sendable, Equatable, Codable {
    public var sha: String
    /// ISO 8601, as git writes it (`2026-11-27T15:53:22+00:00`).
    public var date: String
    public var author: String
    public var subject: String

    public init(sha: String, date: String, author: String, subject: String) {
        self.sha = sha
        self.date = date
        self.author = author
        self.subject = subject
    }
}

/// git could not be asked; the description is one line with what to do.
public struct RevisionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
