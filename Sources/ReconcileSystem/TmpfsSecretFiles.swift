import Foundation
import Glibc
import ReconcileCore

/// Secret files for `secrets_mode: file`, on tmpfs so that a value never reaches a disk:
/// `<root>/<container>-<random>/<NAME>`. The root and each folder are 0700 and reconcile's own,
/// so no other user on the host can read a value. Each file is 0400, owned by the image's user
/// when the image names it by number (`USER 10001`); an image that names its user by name gets
/// 0444 files (the folder still keeps other host users out), and root's image 0400 root files.
public struct TmpfsSecretFiles: SecretFileStore {
    public let root: String

    public init(root: String) { self.root = root }

    /// `RECONCILE_SECRETS_DIR`, else the first of `/run/reconcile/secrets` (as root),
    /// `$XDG_RUNTIME_DIR/reconcile/secrets` and `/dev/shm/reconcile-<uid>/secrets` that is on tmpfs.
    public static func defaultRoot(environment: [String: String]) -> String {
        if let value = environment["RECONCILE_SECRETS_DIR"], !value.isEmpty { return value }
        var candidates: [String] = []
        if geteuid() == 0 { candidates.append("/run/reconcile/secrets") }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            candidates.append("\(runtime)/reconcile/secrets")
        }
        candidates.append("/dev/shm/reconcile-\(geteuid())/secrets")
        return candidates.first { fileSystem(of: $0) == "tmpfs" } ?? candidates[0]
    }

    public func place(_ values: [String: String], for container: String, user: String?) throws -> SecretFolder {
        try PrivateDirectory.prepare(
            root, create: true, role: "the secret files' folder", option: "RECONCILE_SECRETS_DIR")
        try Self.requireTmpfs(root)
        let folder = "\(root)/\(container)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        guard mkdir(folder, 0o700) == 0 else {
            throw StateError("cannot create \(folder): \(String(cString: strerror(errno)))")
        }
        do {
            try restore(values, in: folder, user: user)
        } catch {
            remove(folder)
            throw error
        }
        return SecretFolder(
            path: folder, files: Dictionary(uniqueKeysWithValues: values.keys.map { ($0, "\(folder)/\($0)") }))
    }

    public func restore(_ values: [String: String], in folder: String, user: String?) throws {
        guard folder.hasPrefix(root + "/") else { throw StateError("\(folder) is not a secret folder of reconcile") }
        if access(folder, F_OK) != 0 {
            try PrivateDirectory.prepare(
                root, create: true, role: "the secret files' folder", option: "RECONCILE_SECRETS_DIR")
            guard mkdir(folder, 0o700) == 0 else {
                throw StateError("cannot create \(folder): \(String(cString: strerror(errno)))")
            }
        }
        let owner = Self.owner(user)
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            let path = "\(folder)/\(name)"
            unlink(path)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o400)
            guard fd >= 0 else {
                throw StateError("cannot write the secret file for \(name): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            let bytes = Array(value.utf8)
            guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                throw StateError("cannot write the secret file for \(name): short write")
            }
            switch owner {
            case .uid(let uid, let gid): fchown(fd, uid, gid ?? gid_t(getegid()))
            case .named: fchmod(fd, 0o444)
            case .root: break
            }
        }
    }

    public func remove(_ folder: String) {
        guard folder.hasPrefix(root + "/"), !folder.contains("/../") else { return }
        try? FileManager.default.removeItem(atPath: folder)
    }

    public func exists(_ folder: String) -> Bool { access(folder, F_OK) == 0 }

    public func folders(prefix: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted().map { "\(root)/\($0)" }
    }

    enum Owner: Equatable {
        case root
        case uid(uid_t, gid_t?)
        case named
    }

    /// Who reads the files inside the container: the image's `USER`.
    static func owner(_ user: String?) -> Owner {
        guard let user, !user.isEmpty else { return .root }
        let parts = user.split(separator: ":", maxSplits: 1).map(String.init)
        guard let uid = UInt32(parts[0]) else { return .named }
        if uid == 0 { return .root }
        let gid = parts.count > 1 ? UInt32(parts[1]) : nil
        if parts.count > 1 && gid == nil { return .named }
        return .uid(uid, gid)
    }

    /// Refuses a root on anything but tmpfs: the values must not reach a disk.
    static func requireTmpfs(_ path: String) throws {
        guard fileSystem(of: path) == "tmpfs" else {
            throw StateError(
                "secrets_mode: file keeps secret files on tmpfs, and \(path) is not on tmpfs; set "
                    + "RECONCILE_SECRETS_DIR to a folder under /run or /dev/shm")
        }
    }

    /// The type of the file system `path` is on, from the longest mount point holding it.
    static func fileSystem(of path: String) -> String? {
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        var best: (point: String, type: String)?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = fields[1].replacingOccurrences(of: "\\040", with: " ")
            let inside = point == "/" || real == point || real.hasPrefix(point + "/")
            if inside, point.count >= (best?.point.count ?? -1) { best = (point, String(fields[2])) }
        }
        return best?.type
    }
}
