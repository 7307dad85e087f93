import ArgumentParser
import ReconcileCore

/// The options every command that deploys shares (`apply`, `rollback`): where the state lives
/// and how long to wait for another apply of the same environment.
struct DeployOptions: ParsableArguments {
    @Option(
        help:
            "Where the journal, deploy records and holds live (default: RECONCILE_STATE_DIR, /var/lib/reconcile as root, else $XDG_STATE_HOME/reconcile)."
    )
    var stateDir: String?

    @Option(help: "How long to wait for another apply of the same environment, e.g. 2m (at most 24h).")
    var lockTimeout: String = "5m"

    func validate() throws {
        guard let timeout = Quantities.duration(lockTimeout), Limits.lockTimeout.contains(timeout) else {
            throw ValidationError(
                "--lock-timeout expects a duration like 30s or 5m, at most 24h, got \"\(lockTimeout)\"")
        }
    }

    /// `--lock-timeout` read (validated already).
    var timeout: Duration { Quantities.duration(lockTimeout) ?? .seconds(300) }
}
