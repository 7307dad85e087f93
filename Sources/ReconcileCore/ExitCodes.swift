/// Every exit code reconcile uses, in one place. Documented in `--help`, the README and
/// docs/operations.md.
public enum ExitCodes {
    /// Success: valid, in sync, converged, or a status was shown.
    public static let success: Int32 = 0
    /// An error before anything changed: bad input, unreachable engine, conflict, lock held.
    public static let failure: Int32 = 1
    /// `diff`: changes are pending. `apply --detailed-exitcode`: changes were made and converged.
    public static let changesPending: Int32 = 2
    /// `apply`: a deploy failed and was rolled back; the previous version serves.
    public static let rolledBack: Int32 = 3
    /// `apply`: a deploy failed and so did the rollback; a person must look.
    public static let rollbackFailed: Int32 = 4
    /// `apply`: some environments converged, others failed before anything of theirs changed.
    public static let partial: Int32 = 5
    /// `apply`: some environments were skipped because their desired state failed before and was
    /// rolled back (not retried in a loop); nothing of theirs changed.
    public static let skippedKnownBad: Int32 = 6
    /// `apply`: some environments were skipped because they need approval (or it was declined);
    /// the others are in sync or converged.
    public static let skippedForApproval: Int32 = 7
    /// The command line itself is wrong (EX_USAGE).
    public static let usage: Int32 = 64

    /// The exit code of one `apply` over several environments: the most serious outcome wins.
    /// 4 over 3, then errors (5 when something else converged, 1 when nothing changed), then an
    /// interruption (128 + the signal) when the run stopped before all environments were done,
    /// then 6 for environments skipped as known bad, then 7 for those skipped for approval; 0 (or 2 with `detailed`, when something changed).
    public static func apply(_ outcomes: [DeployOutcome], interruptedBy signal: Int32? = nil, detailed: Bool = false)
        -> Int32
    {
        func any(_ match: (DeployOutcome) -> Bool) -> Bool { outcomes.contains(where: match) }
        if any({ if case .rollbackFailed = $0 { return true } else { return false } }) { return rollbackFailed }
        if any({ if case .rolledBack = $0 { return true } else { return false } }) { return rolledBack }
        let changed = any(\.changedEngine)
        if any({ if case .refused = $0 { return true } else { return false } }) { return changed ? partial : failure }
        if let signal { return 128 + signal }
        if any({ if case .interrupted = $0 { return true } else { return false } }) { return failure }
        if any({ if case .skipped(.knownBad, _) = $0 { return true } else { return false } }) {
            return skippedKnownBad
        }
        if any({ if case .skipped = $0 { return true } else { return false } }) { return skippedForApproval }
        return detailed && changed ? changesPending : success
    }
}

extension DeployOutcome {
    /// The exit code of an apply of this environment alone.
    public var exitCode: Int32 { ExitCodes.apply([self]) }
}
