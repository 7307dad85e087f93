import Foundation

/// One apply per environment per engine, whatever the state directory and wherever reconcile runs:
/// the lock is a lease held on the engine itself, a container named `<service>-<environment>.lock`
/// that is created (never started) from a tiny image reconcile imports. The engine refuses a second
/// container with the same name, so two applies, from two state directories, two users, a
/// container and the host, or two machines talking to one engine, can never both hold it.
///
/// A lease whose holder is gone is recovered and reported: when the holder ran on this machine in
/// this process namespace, by checking that process; otherwise once the time it announced for
/// itself (its `until`) has passed.
public struct EngineLock: Sendable {
    /// The label that marks a lease and holds its holder (JSON).
    public static let leaseLabel = "io.reconcile.lease"
    /// The image leases are created from: an empty root filesystem, imported on first use.
    public static let image = "reconcile-lease:1"
    /// An empty tar archive (two zero blocks).
    static let emptyArchive = [UInt8](repeating: 0, count: 1024)

    public let engine: any ContainerEngine
    public let identity: any ProcessIdentity
    public let clock: any DeployClock
    public let wallClock: @Sendable () -> Date
    public var poll: Duration = .milliseconds(200)

    public init(
        engine: any ContainerEngine, identity: any ProcessIdentity, clock: any DeployClock,
        wallClock: @escaping @Sendable () -> Date
    ) {
        self.engine = engine
        self.identity = identity
        self.clock = clock
        self.wallClock = wallClock
    }

    /// A held lease; release it with `release(_:)`.
    public struct Lease: Sendable, Equatable {
        public var id: String
        public var name: String
        public var holder: LeaseHolder
    }

    /// What happened while acquiring, for the report.
    public enum Event: Sendable, Equatable {
        /// Another apply holds the lock; this one waits (said once, at once).
        case waiting(LeaseHolder)
        /// A lease whose holder is gone was removed.
        case recovered(LeaseHolder, reason: String)
    }

    /// Takes the lease for `spec`, waiting up to `timeout` for another holder. `ttl` is how long
    /// this apply may hold it at most (the deploy's own bound); `cancelled` is polled while waiting.
    /// Takes a lease this very process left behind as stale (`watch`: one reconcile per environment
    /// at a time, so a lease of its own is one it could not remove when the engine went away).
    public var reclaimOwn = false

    public func acquire(
        _ spec: EnvironmentSpec, ttl: Duration, timeout: Duration,
        report: @Sendable (Event) -> Void = { _ in }, cancelled: @Sendable () -> Bool = { false }
    ) async throws -> Lease {
        let deadline = clock.now() + timeout
        var announced = false
        var imported = false
        while true {
            if cancelled() { throw LockError.cancelled }
            let holder = identity.current(since: wallClock(), ttl: ttl)
            do {
                let id = try await engine.createContainer(creation(spec, holder: holder))
                return Lease(id: id, name: spec.lockName, holder: holder)
            } catch EngineError.api(let status, _, _) where status == 404 && !imported {
                // The lease image is missing: import it once (`docker import` of an empty archive).
                try await engine.importImage(Self.emptyArchive, as: Self.image)
                imported = true
                continue
            } catch EngineError.api(let status, _, _) where status == 409 {
                // Held: by whom, and are they still there?
                guard let existing = try await engine.inspectContainer(spec.lockName) else { continue }
                guard existing.isLease, let current = LeaseHolder.decode(existing.labels[Self.leaseLabel]) else {
                    throw LockError.foreign(name: spec.lockName, id: existing.shortID)
                }
                if let reason = reclaimOwn && current.isSameProcess(as: holder)
                    ? "it is this process's own, left when the engine went away before it could be removed"
                    : staleness(current)
                {
                    try await engine.removeContainer(existing.id, force: true)
                    report(.recovered(current, reason: reason))
                    continue
                }
                if !announced {
                    report(.waiting(current))
                    announced = true
                }
                guard clock.now() < deadline else {
                    throw LockError.busy(name: spec.lockName, holder: current, waited: timeout)
                }
                try? await clock.sleep(for: poll)
            }
        }
    }

    /// Removes the lease. A lease that is already gone (removed by hand) is fine.
    public func release(_ lease: Lease) async throws {
        try await engine.removeContainer(lease.id, force: true)
    }

    /// Why the holder counts as gone, or nil while it may still run.
    func staleness(_ holder: LeaseHolder) -> String? {
        switch identity.isAlive(holder) {
        case .some(true): return nil
        case .some(false): return "its process \(holder.pid) on \(holder.host) is gone"
        case .none:
            guard let until = holder.untilDate, wallClock() > until else { return nil }
            return "it was due to end by \(holder.until) and its process cannot be checked from here"
        }
    }

    /// The lease container of `spec` held by `holder`.
    public func creation(_ spec: EnvironmentSpec, holder: LeaseHolder) -> ContainerCreation {
        ContainerCreation(
            name: spec.lockName, image: Self.image, environment: [], command: ["lease"],
            labels: [
                Self.leaseLabel: holder.json, Labels.service: spec.service, Labels.environment: spec.environment,
            ],
            port: nil, restart: .no, memory: nil, cpus: nil, stopTimeout: .seconds(1), healthcheck: nil)
    }
}

/// Who holds a lease: enough to tell on this machine whether that process still runs, and a time
/// after which a holder elsewhere counts as gone.
public struct LeaseHolder: Sendable, Codable, Equatable {
    public var pid: Int32
    public var host: String
    /// When it took the lease and by when it will have released it (ISO 8601).
    public var since: String
    public var until: String
    /// The kernel's boot id, the process's pid namespace and its start time (clock ticks since
    /// boot): equal boot id and namespace mean the pid can be checked here; the start time tells a
    /// reused pid from the holder.
    public var bootID: String?
    public var pidNamespace: String?
    public var processStart: String?

    public init(
        pid: Int32, host: String, since: String, until: String, bootID: String? = nil, pidNamespace: String? = nil,
        processStart: String? = nil
    ) {
        self.pid = pid
        self.host = host
        self.since = since
        self.until = until
        self.bootID = bootID
        self.pidNamespace = pidNamespace
        self.processStart = processStart
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ text: String?) -> LeaseHolder? {
        text.flatMap { try? JSONDecoder().decode(LeaseHolder.self, from: Data($0.utf8)) }
    }

    var untilDate: Date? { ISO8601DateFormatter().date(from: until) }

    /// True when both records name the same process (pid, host, boot, pid namespace, start time).
    public func isSameProcess(as other: LeaseHolder) -> Bool {
        pid == other.pid && host == other.host && bootID == other.bootID && pidNamespace == other.pidNamespace
            && processStart == other.processStart && processStart != nil
    }

    /// `pid 123 on host since 2026-11-27T10:00:00Z`
    public var summary: String { "pid \(pid) on \(host) since \(since)" }
}

/// This process's identity, and whether another holder still runs. `LiveProcessIdentity` reads /proc.
public protocol ProcessIdentity: Sendable {
    /// A holder record for this process, taking the lease at `since` for at most `ttl`.
    func current(since: Date, ttl: Duration) -> LeaseHolder
    /// True or false when the holder's process can be checked from here; nil when it cannot
    /// (another machine, another pid namespace).
    func isAlive(_ holder: LeaseHolder) -> Bool?
}

/// Why the lock could not be had.
public enum LockError: Error, Sendable, Equatable, CustomStringConvertible {
    case busy(name: String, holder: LeaseHolder, waited: Duration)
    case foreign(name: String, id: String)
    case cancelled

    public var description: String {
        switch self {
        case .busy(let name, let holder, let waited):
            return "another apply holds the lock \(name) (\(holder.summary), until \(holder.until)); waited "
                + "\(Quantities.format(waited)). Wait for it, raise --lock-timeout, or, if that apply is gone, "
                + "docker rm \(name)"
        case .foreign(let name, let id):
            return "a container named \(name) (\(id)) that reconcile did not create holds the lock's name; "
                + "remove or rename it"
        case .cancelled:
            return "interrupted while waiting for the lock; nothing was changed"
        }
    }
}
