/// Docker cannot change a container's labels after it is created, so a container's role in its
/// environment is its name:
///
/// - `<service>-<environment>`: the live version. Only a container that passed its gate is given
///   this name (a new version is gated under the candidate name and renamed when it passes).
/// - `<…>-candidate`: a new version being gated; never verified while it has this name.
/// - `<…>-backup-<n>`: an earlier live version, verified; a higher `n` is newer. `<…>-backup-<n>-unverified`
///   is one that was live without a finished gate (an earlier apply was interrupted while
///   re-checking it); rollback only falls back to it when no verified backup is left.
/// - `<…>.lock`: the lease an apply holds while it changes the environment (see `EngineLock`).
/// - `<…>-proxy`: with `strategy: blue-green`, the HAProxy that owns the port (label `role=proxy`);
///   it and the apps share the network `<…>-net`.
///
/// The order of backups comes from `n`, never from a clock: a clock stepped backwards cannot make
/// pruning remove the backup just made.
extension EnvironmentSpec {
    public var candidateName: String { "\(containerName)-candidate" }
    public var lockName: String { "\(containerName).lock" }
    /// The blue-green proxy's container.
    public var proxyName: String { "\(containerName)-proxy" }
    /// The network the blue-green proxy reaches the app containers on.
    public var networkName: String { "\(containerName)-net" }
    var backupPrefix: String { "\(containerName)-backup-" }

    /// The next backup's name: one past the highest number any container (whoever made it) uses.
    public func nextBackupName(existing names: [String], verified: Bool) -> String {
        let highest = names.compactMap { BackupName(name: $0, prefix: backupPrefix)?.sequence }.max() ?? 0
        return "\(backupPrefix)\(highest + 1)\(verified ? "" : BackupName.unverifiedSuffix)"
    }
}

/// A backup's name, read: its sequence number and whether it was verified.
public struct BackupName: Sendable, Equatable, Comparable {
    static let unverifiedSuffix = "-unverified"

    /// Higher is newer; 0 for names an earlier version of reconcile made (`-backup-<UTC time>`).
    public var sequence: Int
    public var verified: Bool
    /// The part after `-backup-`, which orders backups of the same sequence (the earlier scheme's times).
    public var suffix: String

    init?(name: String, prefix: String) {
        guard name.hasPrefix(prefix) else { return nil }
        suffix = String(name.dropFirst(prefix.count))
        let unverified = suffix.hasSuffix(Self.unverifiedSuffix)
        let number = unverified ? String(suffix.dropLast(Self.unverifiedSuffix.count)) : suffix
        if !number.isEmpty, number.count <= 9, number.allSatisfy(\.isASCII), let value = Int(number), value > 0 {
            sequence = value
            verified = !unverified
        } else {
            sequence = 0
            verified = true
        }
    }

    public static func < (lhs: BackupName, rhs: BackupName) -> Bool {
        (lhs.sequence, lhs.suffix) < (rhs.sequence, rhs.suffix)
    }
}

extension ContainerSnapshot {
    /// True for a backup of this environment.
    public func isBackup(of spec: EnvironmentSpec) -> Bool {
        isManaged(service: spec.service, environment: spec.environment) && name.hasPrefix(spec.backupPrefix)
    }

    /// The backup's name read, when this is a backup of the environment.
    public func backupName(of spec: EnvironmentSpec) -> BackupName? {
        isBackup(of: spec) ? BackupName(name: name, prefix: spec.backupPrefix) : nil
    }

    /// True for a backup that passed its gate when it was live.
    public func isVerifiedBackup(of spec: EnvironmentSpec) -> Bool { backupName(of: spec)?.verified == true }

    /// True for this environment's blue-green proxy.
    public func isProxy(of spec: EnvironmentSpec) -> Bool {
        labels[Labels.managed] == "true" && labels[Labels.service] == spec.service
            && labels[Labels.environment] == spec.environment && labels[Labels.role] == Labels.proxyRole
    }

    /// The image as people name it: a pinned revision runs an image by id, so the reference it
    /// was deployed as comes from its configuration label.
    public var shownImage: String {
        guard image.hasPrefix("sha256:") else { return image }
        return labels[Labels.config].flatMap(RuntimeConfig.decode(label:))?.image ?? image
    }

    /// True for the lease of an apply (see `EngineLock`).
    public var isLease: Bool { labels[EngineLock.leaseLabel] != nil }
}

extension Sequence where Element == ContainerSnapshot {
    /// This environment's backups, newest first.
    public func backups(of spec: EnvironmentSpec) -> [ContainerSnapshot] {
        compactMap { container in container.backupName(of: spec).map { (container, $0) } }
            .sorted { $0.1 > $1.1 }
            .map(\.0)
    }
}

/// Which backups a deploy removes once the new version serves: verified ones beyond the number
/// kept, and every unverified one (a verified version serves, so they are of no use for rollback).
public enum BackupPolicy {
    /// - Parameters:
    ///   - backups: newest first, as `backups(of:)` returns them.
    ///   - keep: the environment's `backups`.
    ///   - pending: backups the deploy will make before it prunes (1 when it replaces a container).
    public static func surplus(_ backups: [ContainerSnapshot], of spec: EnvironmentSpec, pending: Int = 0)
        -> [ContainerSnapshot]
    {
        let verified = backups.filter { $0.isVerifiedBackup(of: spec) }
        let kept = Set(verified.prefix(max(0, spec.backups - pending)).map(\.id))
        return backups.filter { !kept.contains($0.id) }
    }
}
