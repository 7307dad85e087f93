import Foundation
import ReconcileCore
import ReconcileSystem

/// Earlier revisions of environment files, read from git: a revision's spec, the exact image it
/// ran, and the hold a rollback leaves.
enum HeldRevision {
    /// The spec of `file` as it was at `commit`, validated like any file; problems name `FILE@sha`.
    static func spec(of file: String, at commit: String, context: CommandContext) async throws -> EnvironmentSpec {
        guard let bytes = try await context.revisions.contents(of: file, at: [commit])[commit] else {
            throw UsageError("\(file) does not exist at revision \(commit.prefix(12))")
        }
        let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        switch SpecParser.parse(bytes, file: "\(file)@\(commit.prefix(12))", defaultEnvironment: name) {
        case .success(let parsed):
            var spec = parsed.spec
            spec.file = file
            return spec
        case .failure(let failure):
            throw failure
        }
    }

    /// The image a revision's last converged apply ran, from the journal.
    static func pin(for commit: String, environment: String, journal: [JournalEntry]) -> ImagePin? {
        guard
            let entry = journal.last(where: {
                $0.environment == environment && $0.revision == commit && $0.result == "converged"
            }), let id = entry.newImageID
        else { return nil }
        return ImagePin(id: id, digest: entry.newImageDigest, revision: commit)
    }

    /// What to apply for `spec`: the file as it is, or while a rollback holds the environment,
    /// the held revision with the image it ran. A new commit to the file lifts the hold (cleared
    /// here when `release` is true, as apply does). The note says which, for the report.
    static func desired(
        _ spec: EnvironmentSpec, key: [UInt8]?, store: any StateStore, release: Bool, context: CommandContext
    ) async throws -> (desired: DesiredEnvironment, note: String?) {
        let plain = Planning.desiredEnvironment(spec, key: key, context: context)
        guard let hold = try store.hold(spec.containerName) else { return (plain, nil) }
        let current = try? await context.revisions.revision(of: spec.file)
        guard current == hold.from else {
            if release { try store.clearHold(spec.containerName) }
            // The new commit brings back the held content (a `git revert`): it keeps the held bytes.
            var desired = plain
            if let id = hold.imageID,
                let held = try? await Self.spec(of: spec.file, at: hold.revision, context: context),
                held.contentDigest == spec.contentDigest
            {
                desired.pin = ImagePin(id: id, digest: nil, revision: hold.revision)
            }
            return (
                desired,
                "the hold at \(hold.revision.prefix(12)) is lifted: \(spec.file) changed since the rollback "
                    + "(now \(current?.short ?? "unknown"))"
            )
        }
        let held = try await Self.spec(of: spec.file, at: hold.revision, context: context)
        var desired = Planning.desiredEnvironment(held, key: key, context: context)
        desired.revision = FileRevision(commit: hold.revision, dirty: false)
        desired.pin = hold.imageID.flatMap { id in
            pin(for: hold.revision, environment: spec.environment, journal: (try? store.journal()) ?? [])
                ?? ImagePin(id: id, digest: nil, revision: hold.revision)
        }
        return (
            desired,
            "held at \(hold.revision.prefix(12)) since \(hold.since) by `reconcile rollback`: that revision is applied, "
                + "not the file as it is. A new commit to \(spec.file) lifts the hold, or `reconcile rollback --release "
                + "\(spec.file)` now"
        )
    }
}
