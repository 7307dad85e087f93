/// Every exit code reconcile uses, in one place. Documented in README and docs/operations.md.
public enum ExitCodes {
    /// Success: valid, in sync, converged, or a status was shown.
    public static let success: Int32 = 0
    /// An error before anything changed: bad input, unreachable engine, conflict, refused approval.
    public static let failure: Int32 = 1
    /// `diff`: changes are pending (apply would change something).
    public static let changesPending: Int32 = 2
    /// `apply`: the deploy failed and was rolled back; the previous version serves.
    public static let rolledBack: Int32 = 3
    /// `apply`: the deploy failed and so did the rollback; a person must look.
    public static let rollbackFailed: Int32 = 4
}
