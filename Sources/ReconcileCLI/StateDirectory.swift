import Foundation

/// Where apply keeps its journal, deploy records and fingerprint key: `--state-dir`, else
/// `RECONCILE_STATE_DIR`, else `/var/lib/reconcile` as root, else `$XDG_STATE_HOME/reconcile` (or
/// `~/.local/state/reconcile`). `FileStateStore` checks and creates it.
enum StateDirectory {
    static func path(_ option: String?, environment: [String: String]) -> String {
        if let option, !option.isEmpty { return option }
        if let value = environment["RECONCILE_STATE_DIR"], !value.isEmpty { return value }
        if getuid() == 0 { return "/var/lib/reconcile" }
        if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty { return "\(xdg)/reconcile" }
        return "\(environment["HOME"] ?? NSTemporaryDirectory())/.local/state/reconcile"
    }
}
