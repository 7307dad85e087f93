import Foundation
import ReconcileCore

/// A directory only its owner may enter: created 0700 (parents as `mkdir -p` makes them), and an
/// existing one refused when another user owns it or others may write to it; one that others may
/// only read is tightened to 0700. Used for the state directory and the secret files' folder.
enum PrivateDirectory {
    /// - Parameters:
    ///   - role: how messages name it (`the state directory`).
    ///   - option: what the user sets to choose another (`--state-dir`).
    static func prepare(_ path: String, create: Bool, role: String, option: String) throws {
        var link = stat()
        if lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK {
            throw StateError(
                "\(role) \(path) is a symbolic link; give the directory it points at, or choose another with \(option)")
        }
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw creationError(path, errno, role: role, option: option) }
            guard create else { return }
            try makeDirectory(path, role: role, option: option)
            guard stat(path, &info) == 0 else { throw creationError(path, errno, role: role, option: option) }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw StateError("\(role) \(path) is not a directory; choose another with \(option)")
        }
        let me = geteuid()
        guard info.st_uid == me else {
            throw StateError(
                "\(role) \(path) belongs to uid \(info.st_uid), not to you (uid \(me)); another user could "
                    + "change what reconcile reads there. Use a directory of your own (\(option)), or chown it")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw StateError(
                "\(role) \(path) may be written by other users (mode \(String(info.st_mode & 0o7777, radix: 8))); "
                    + "run chmod 700 \(path), or choose another with \(option)")
        }
        if info.st_mode & 0o077 != 0 { chmod(path, 0o700) }
    }

    /// Makes the directory (0700) and any missing parents (0755, like mkdir -p).
    private static func makeDirectory(_ path: String, role: String, option: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, access(parent, F_OK) != 0 {
            do {
                // Parents are 0755 whatever the umask, like `install -d`.
                try FileManager.default.createDirectory(
                    atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            } catch {
                throw creationError(path, EACCES, role: role, option: option)
            }
        }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw creationError(path, errno, role: role, option: option) }
    }

    /// Our sentence for why `path` could not be made, not the system's: who may not write where, and what to do.
    static func creationError(_ path: String, _ code: Int32, role: String, option: String) -> StateError {
        let parent = (path as NSString).deletingLastPathComponent
        let reason: String
        switch code {
        case EACCES, EPERM:
            reason =
                "uid \(geteuid()) may not write to \(parent.isEmpty ? "its folder" : parent); choose a "
                + "writable one with \(option), or run as a user who may"
        case EROFS:
            reason =
                "\(parent.isEmpty ? path : parent) is on a read-only file system; choose a writable one with \(option)"
        case ENOENT, ENOTDIR:
            reason = "no folder can be made inside \(parent); choose another with \(option)"
        case ENOSPC, EDQUOT:
            reason = "the disk (or this user's quota) is full; free some space, or choose another with \(option)"
        default:
            reason = "\(String(cString: strerror(code))); choose another with \(option)"
        }
        return StateError("cannot create \(role) \(path): \(reason)")
    }

    static func hint(_ code: Int32, option: String) -> String {
        switch code {
        case EACCES, EPERM, EROFS: return "; choose a writable one with \(option)"
        case ENOSPC, EDQUOT: return "; free some space"
        default: return ""
        }
    }
}
