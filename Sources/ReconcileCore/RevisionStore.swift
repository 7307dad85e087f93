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
}

/// git could not be asked; the description is one line with what to do.
public struct RevisionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
