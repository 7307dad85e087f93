import ArgumentParser
import Foundation
import ReconcileCore
import ReconcileSystem

/// Output formats of `history`.
enum HistoryFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

extension Reconcile {
    /// `reconcile history`: the environment file's revisions in git, with what ran and what apply did.
    struct History: SingleEnvironmentCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "List an environment file's revisions, newest first: image, which one is live, and what apply did with each."
        )

        @Argument(help: "The environment file, or its name (`staging`).")
        var file: String

        @Option(help: "Output format: table or json (stdout only).")
        var format: HistoryFormat = .table

        @Option(help: "How many revisions, newest first (1 to 100000).")
        var limit: Int = 20

        @Option(help: "The state directory whose journal says what apply did (default as for apply).")
        var stateDir: String?

        func validate() throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        }

        func executeResolved(_ context: CommandContext) async -> Int32 {
            do {
                let spec = try EnvironmentLoader.load([file]).specs.first
                guard let spec else { throw UsageError("\(file): no environment in this file") }
                let commits = try await context.revisions.history(of: file, limit: limit)
                guard !commits.isEmpty else {
                    throw UsageError("\(file) has no commits in git (is it committed, and inside a repository?)")
                }
                let contents = try await context.revisions.contents(of: file, at: commits.map(\.sha))
                let store = try? FileStateStore(
                    path: StateDirectory.path(stateDir, environment: context.environment), create: false)
                let journal = ((try? store?.journal()) ?? nil) ?? []
                let live = await Self.liveRevision(spec, context: context)
                let rows = commits.map { commit in
                    HistoryRow(
                        commit: commit, image: contents[commit.sha].flatMap { Self.image(in: $0, file: file) },
                        live: live == commit.sha,
                        applied: journal.filter { $0.environment == spec.environment && $0.revision == commit.sha }
                            .map { HistoryRow.Applied(time: $0.time, result: $0.result) })
                }
                switch format {
                case .table: context.output.write(Self.table(rows, spec: spec, liveKnown: live != nil))
                case .json: context.output.write(try Self.json(rows) + "\n")
                }
                return ExitCodes.success
            } catch {
                return report(error, context)
            }
        }

        /// The revision the live container was made from, when the engine answers.
        static func liveRevision(_ spec: EnvironmentSpec, context: CommandContext) async -> String? {
            guard let engine = try? await context.connectTo(spec.engine) else {
                context.warn("reconcile: warning: the engine cannot be reached; which revision is live is not shown")
                return nil
            }
            let container =
                spec.platform == .swarm
                ? (try? await engine.service(spec.containerName))?.asContainer
                : try? await engine.inspectContainer(spec.containerName)
            await engine.shutdown()
            guard let container, container.isManaged(service: spec.service, environment: spec.environment) else {
                return nil
            }
            return container.labels[Labels.revision]
        }

        /// The image a revision of the file names; nil when that revision does not parse.
        static func image(in bytes: [UInt8], file: String) -> String? {
            guard case .success(let parsed) = SpecParser.parse(bytes, file: file, defaultEnvironment: "history")
            else { return nil }
            return parsed.spec.image.description
        }

        static func table(_ rows: [HistoryRow], spec: EnvironmentSpec, liveKnown: Bool) -> String {
            let header = ["", "REVISION", "DATE", "AUTHOR", "IMAGE", "APPLIED", "SUBJECT"]
            let body = rows.map { row -> [String] in
                let last = row.applied.last.map { "\($0.result) \($0.time)" } ?? "-"
                let more = row.applied.count > 1 ? " (+\(row.applied.count - 1))" : ""
                return [
                    row.live ? "*" : "", String(row.commit.sha.prefix(12)), String(row.commit.date.prefix(19)),
                    row.commit.author, row.image ?? "(invalid)", last + more, row.commit.subject,
                ]
            }
            var lines = TextTable.lines(header, body)
            lines.append(
                liveKnown
                    ? "* live: the revision \(spec.containerName) was made from"
                    : "no revision of these is live (\(spec.containerName) is missing, or was made from another revision)"
            )
            return lines.joined(separator: "\n") + "\n"
        }

        static func json(_ rows: [HistoryRow]) throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(["revisions": rows]), as: UTF8.self)
        }
    }
}

/// One revision of an environment file, as `history` shows it.
struct HistoryRow: Encodable {
    struct Applied: Encodable {
        var time: String
        var result: String
    }
    var commit: FileCommit
    var image: String?
    var live: Bool
    var applied: [Applied]
}
