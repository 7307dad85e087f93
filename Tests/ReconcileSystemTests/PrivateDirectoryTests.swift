import Foundation
import ReconcileCore
import Testing

@testable import ReconcileSystem

/// Issue 10: a state directory that cannot be made is our sentence, not the system's, for each
/// reason mkdir gives. (As root, EACCES cannot be provoked here: the sentence is checked directly;
/// /proc, which takes no folders, is checked end to end in ConventionTests.)
struct PrivateDirectoryTests {
    @Test(arguments: [
        (
            EACCES,
            "uid \(geteuid()) may not write to /srv/ro; choose a writable one with --state-dir, or run as a user who may"
        ),
        (EROFS, "/srv/ro is on a read-only file system; choose a writable one with --state-dir"),
        (ENOENT, "no folder can be made inside /srv/ro; choose another with --state-dir"),
        (ENOSPC, "the disk (or this user's quota) is full; free some space, or choose another with --state-dir"),
    ])
    func whyAStateDirectoryCannotBeMade(_ code: Int32, _ reason: String) {
        let error = PrivateDirectory.creationError(
            "/srv/ro/state", code, role: "the state directory", option: "--state-dir")
        #expect(error.description == "cannot create the state directory /srv/ro/state: \(reason)")
    }
}
