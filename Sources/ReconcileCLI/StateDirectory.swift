import Foundation

/// Where apply keeps its journal and locks.
enum StateDirectory {
    static func resolve(_ option: String?, environment: [String: String]) throws -> String {
        let path: String
        if let option, !option.isEmpty {
            path = option
        } else if let value = environment["RECONCILE_STATE_DIR"], !value.isEmpty {
            path = value
        } else if getuid() == 0 {
            path = "/var/lib/reconcile"
        } else if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty {
            path = "\(xdg)/reconcile"
        } else {
            path = "\(environment["HOME"] ?? NSTemporaryDirectory())/.local/state/reconcile"
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw UsageError(
                "cannot create the state directory \(path): \(error.localizedDescription); set --state-dir")
        }
        return path
    }
}
