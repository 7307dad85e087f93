/// Everything reconcile remembers between runs on the host that runs it: the journal, the
/// write-ahead record of a deploy in flight, the key of secret fingerprints. `FileStateStore` keeps
/// it in the state directory (0700, files 0600, no symlink followed); `FakeStateStore` in memory.
///
/// What the engine itself shows (which container is active, which backups exist and whether they
/// were verified) is never kept here: two applies with different state directories see the same
/// engine, so the engine's names stay the source of truth and this store adds memory on top.
public protocol StateStore: Sendable {
    /// Where the state lives, for messages (`/var/lib/reconcile`).
    var location: String { get }

    /// Appends one entry to the journal.
    func appendJournal(_ entry: JournalEntry) throws
    /// Every journal entry, oldest first; entries that cannot be read are skipped.
    func journal() throws -> [JournalEntry]

    /// The record of a deploy of `container` that has not finished, if any.
    func deployRecord(_ container: String) throws -> DeployRecord?
    /// Saves the record atomically: a crash leaves the old or the new record, never half of one.
    func saveDeployRecord(_ record: DeployRecord) throws
    func clearDeployRecord(_ container: String) throws

    /// The desired state of `container` that last failed and was rolled back, if any.
    func failedDeploy(_ container: String) throws -> FailedDeploy?
    func saveFailedDeploy(_ failed: FailedDeploy) throws
    func clearFailedDeploy(_ container: String) throws

    /// The revision `container` is held at by `reconcile rollback`, if any.
    func hold(_ container: String) throws -> Hold?
    func saveHold(_ hold: Hold) throws
    func clearHold(_ container: String) throws

    /// The key that secret fingerprints are computed with; with `create`, made on first use.
    /// Nil without `create` when there is none yet.
    func fingerprintKey(create: Bool) throws -> [UInt8]?
}

/// The state directory cannot be used; the description says why and what to do.
public struct StateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// One apply of one environment, as a line of `journal.jsonl`. Holds no secret values.
public struct JournalEntry: Sendable, Codable, Equatable {
    public var time: String
    public var environment: String
    public var file: String
    public var revision: String?
    /// The file had changes not committed when it was applied.
    public var dirty: Bool?
    /// sha256 of the file's content (see `EnvironmentSpec.contentDigest`).
    public var contentDigest: String?
    public var oldImage: String?
    public var oldImageID: String?
    public var newImage: String
    public var newImageID: String?
    /// `repo@sha256:…` of the new image when it came from a registry: how to pull the same bytes again.
    public var newImageDigest: String?
    public var action: String
    public var result: String
    public var exitCode: Int32
    public var seconds: Double
    public var failedCheck: String?

    public init(
        time: String, environment: String, file: String, revision: String?, oldImage: String?, oldImageID: String?,
        newImage: String, newImageID: String?, action: String, result: String, exitCode: Int32, seconds: Double,
        failedCheck: String?
    ) {
        self.time = time
        self.environment = environment
        self.file = file
        self.revision = revision
        self.oldImage = oldImage
        self.oldImageID = oldImageID
        self.newImage = newImage
        self.newImageID = newImageID
        self.action = action
        self.result = result
        self.exitCode = exitCode
        self.seconds = seconds
        self.failedCheck = failedCheck
    }
}

/// A desired state that failed its deploy and was rolled back: later applies of the same state
/// change nothing until the file changes or `apply --retry` asks for another try.
public struct FailedDeploy: Sendable, Codable, Equatable {
    public var container: String
    /// `DesiredEnvironment.deployIdentity`: the runtime configuration (secret fingerprints
    /// included) and the image id it ran.
    public var identity: String
    /// The file's revision (`abc123def456`, `+dirty`, `uncommitted`).
    public var revision: String
    public var time: String
    public var reason: String
    /// A webhook was told that later applies skip it (once, not every cron run).
    public var skipNotified: Bool?

    /// How messages name it: `revision abc123def456`, or `this content` when it was applied outside git.
    public var named: String { revision == "unknown" ? "this content (not in git)" : "revision \(revision)" }

    public init(container: String, identity: String, revision: String, time: String, reason: String) {
        self.container = container
        self.identity = identity
        self.revision = revision
        self.time = time
        self.reason = reason
    }
}

/// An environment held at an earlier revision by `reconcile rollback`: a plain apply applies that
/// revision, not the file as it is, until a new commit changes the file (or `--release`).
public struct Hold: Sendable, Codable, Equatable {
    public var container: String
    /// The commit whose version of the file is applied while held.
    public var revision: String
    /// The image id that revision ran, applied instead of whatever its tag points at now.
    public var imageID: String?
    public var since: String
    /// The file's revision when the rollback was made: a different one lifts the hold.
    public var from: FileRevision?

    public init(container: String, revision: String, imageID: String?, since: String, from: FileRevision?) {
        self.container = container
        self.revision = revision
        self.imageID = imageID
        self.since = since
        self.from = from
    }
}

/// The write-ahead record of one deploy: saved before each step that changes the engine, so that
/// the next apply knows what an interrupted one did: which container it renamed aside, which one
/// it created, and which one was being gated (never verified).
public struct DeployRecord: Sendable, Codable, Equatable {
    /// The last step begun; a kill leaves the record at the step it was in.
    public enum Step: String, Sendable, Codable {
        /// The deploy began; nothing on the engine has changed yet.
        case begun
        /// The candidate container exists (not started).
        case created
        /// The previous active container was renamed to `backupName`.
        case renamed
        /// The previous version was stopped.
        case stopped
        /// The candidate runs and its gate is in progress.
        case gating
        /// The candidate passed its gate but does not hold the active name yet.
        case verified
        /// The new version failed; the rollback is in progress.
        case rollingBack
        /// Blue-green: the proxy sends new requests to the new version; the old one drains.
        case switched
    }

    /// The active container's name (`<service>-<environment>`).
    public var container: String
    public var step: Step
    /// Who wrote it.
    public var pid: Int32
    /// The writing process, to tell a live apply from an interrupted one.
    public var holder: LeaseHolder?
    public var since: String
    /// The active container when the deploy began.
    public var previousID: String?
    /// The name the previous container was given as a backup.
    public var backupName: String?
    /// The new container.
    public var candidateID: String?
    /// The container whose gate runs (the candidate, or an existing container being started).
    public var gatingID: String?

    public init(container: String, step: Step, pid: Int32, since: String) {
        self.container = container
        self.step = step
        self.pid = pid
        self.since = since
    }
}
