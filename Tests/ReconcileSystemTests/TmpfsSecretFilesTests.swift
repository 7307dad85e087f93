import Foundation
import ReconcileCore
import Testing

@testable import ReconcileSystem

/// Issue 8, class 12: secret files live on tmpfs, in folders only reconcile's user can enter,
/// readable in the container by the image's user.
struct TmpfsSecretFilesTests {
    func root() -> String { "/dev/shm/reconcile-test-\(UUID().uuidString.prefix(8))/secrets" }

    func info(_ path: String) -> stat {
        var result = stat()
        lstat(path, &result)
        return result
    }

    @Test func writesPrivateFilesOwnedByTheImagesUser() throws {
        let store = TmpfsSecretFiles(root: root())
        defer { try? FileManager.default.removeItem(atPath: (store.root as NSString).deletingLastPathComponent) }
        let folder = try store.place(
            ["API_TOKEN": "hunter2", "DB": "pa55"], for: "app-staging-candidate", user: "10001")
        #expect(folder.path.hasPrefix(store.root + "/app-staging-candidate-"))
        #expect(info(store.root).st_mode & 0o777 == 0o700)
        #expect(info(folder.path).st_mode & 0o777 == 0o700)
        let file = try #require(folder.files["API_TOKEN"])
        #expect(info(file).st_mode & 0o777 == 0o400)
        #expect(info(file).st_uid == 10001)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "hunter2")
        #expect(store.folders(prefix: "app-staging-candidate-") == [folder.path])

        let named = try store.place(["API_TOKEN": "x"], for: "app-staging-candidate", user: "app")
        #expect(info(named.path + "/API_TOKEN").st_mode & 0o777 == 0o444, "a named user cannot be resolved here")

        store.remove(folder.path)
        #expect(!store.exists(folder.path))
        try store.restore(["API_TOKEN": "hunter2"], in: folder.path, user: nil)
        #expect(try String(contentsOfFile: folder.path + "/API_TOKEN", encoding: .utf8) == "hunter2")
        store.remove("/etc")
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"), "only its own folders are removed")
    }

    @Test func refusesAFolderThatIsNotOnTmpfs() throws {
        let path = NSTemporaryDirectory() + "reconcile-secrets-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = TmpfsSecretFiles(root: path)
        #expect(TmpfsSecretFiles.fileSystem(of: "/dev/shm") == "tmpfs")
        #expect {
            _ = try store.place(["A": "b"], for: "x", user: nil)
        } throws: { error in
            "\(error)".hasPrefix("secrets_mode: file keeps secret files on tmpfs, and \(path) is not on tmpfs")
        }
    }

    @Test func readsTheOwnerFromTheImagesUser() {
        #expect(TmpfsSecretFiles.owner(nil) == .root)
        #expect(TmpfsSecretFiles.owner("0") == .root)
        #expect(TmpfsSecretFiles.owner("10001") == .uid(10001, nil))
        #expect(TmpfsSecretFiles.owner("10001:20") == .uid(10001, 20))
        #expect(TmpfsSecretFiles.owner("app") == .named)
        #expect(TmpfsSecretFiles.owner("10001:staff") == .named)
    }
}
