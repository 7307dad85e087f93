import ArgumentParser
import Foundation
import ReconcileCore
import ReconcileSystem

/// Output formats of `status`.
enum StatusFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

extension Reconcile {
    /// `reconcile status`: what runs now for each environment.
    struct Status: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what runs now: container, image and digest, state, health, uptime, revision, backups.")

        @OptionGroup var paths: PathArguments

        @Option(help: "Output format: table or json (stdout only).")
        var format: StatusFormat = .table

        @Option(help: "The state directory whose holds and failed revisions are shown (default as for apply).")
        var stateDir: String?

        func execute(_ context: CommandContext) async -> Int32 {
            do {
                let loaded = try EnvironmentLoader.load(paths.paths)
                let groups = EngineGroups(loaded.specs)
                var perGroup: [Int: [EnvironmentStatus]] = [:]
                var unreachable = 0
                for (group, (target, members)) in zip(groups.targets, groups.members).enumerated() {
                    do {
                        perGroup[group] = try await context.withEngine(target) { engine in
                            try await EnvironmentStatus.read(members.map { loaded.specs[$0] }, engine: engine)
                        }
                    } catch  where groups.count > 1 {
                        // During an outage status is what people need: the other engines are shown.
                        unreachable += 1
                        let names = members.map { loaded.specs[$0].environment }.joined(separator: ", ")
                        context.warn("reconcile: error: \(names): \(error)")
                    }
                }
                let statuses = groups.inFileOrder(perGroup)
                let store = try? FileStateStore(
                    path: StateDirectory.path(stateDir, environment: context.environment), create: false)
                var renderer = StatusRenderer(statuses: statuses, now: context.now())
                for status in statuses {
                    let name = status.spec.containerName
                    renderer.holds[name] = (try? store?.hold(name)) ?? nil
                    renderer.failures[name] = (try? store?.failedDeploy(name)) ?? nil
                }
                context.output.write(format == .json ? try renderer.json() + "\n" : renderer.table())
                return unreachable > 0 ? ExitCodes.failure : ExitCodes.success
            } catch {
                return report(error, context)
            }
        }
    }
}

/// Renders environment statuses as an aligned table or as JSON.
struct StatusRenderer {
    var statuses: [EnvironmentStatus]
    var now: Date
    /// Holds left by `rollback` and desired states that failed, by container name.
    var holds: [String: Hold] = [:]
    var failures: [String: FailedDeploy] = [:]

    init(statuses: [EnvironmentStatus], now: Date) {
        self.statuses = statuses
        self.now = now
    }

    struct Row: Encodable {
        struct Backup: Encodable {
            var name: String
            var id: String
            var image: String
            var revision: String?
            var deployedAt: String?
        }
        var environment: String
        var file: String
        var container: String
        var managed: Bool
        var state: String
        var health: String?
        var image: String?
        var imageID: String?
        var digest: String?
        var startedAt: String?
        var uptimeSeconds: Int?
        var revision: String?
        var deployedAt: String?
        var port: Int
        var backups: [Backup]
        /// The revision a rollback holds the environment at, and since when.
        var held: Hold?
        /// The desired state that failed and is not retried until the file changes or `--retry`.
        var failed: FailedDeploy?
        /// The blue-green proxy in front of it: its name and state.
        var proxy: Proxy?
        var blueGreen: Bool
        /// The engine the file names (`engine:`), when not the default one.
        var engine: String?
        /// A Swarm service's tasks: how many run of the replicas, and on which nodes.
        var tasks: String?

        struct Proxy: Encodable {
            var name: String
            var state: String
            var image: String
        }
    }

    func rows() -> [Row] {
        statuses.map { status in
            let active = status.active
            let uptime = active.flatMap { container in
                container.state == .running
                    ? container.startedAt.map { max(0, Int(saturating: now.timeIntervalSince($0))) } : nil
            }
            let state: String
            if let active {
                state = status.isManaged ? active.state.rawValue : "unmanaged (\(active.state.rawValue))"
            } else {
                state = "missing"
            }
            // A pinned revision runs an image by id: show the reference it was deployed as (the id is in DIGEST/imageID).
            let image = active?.shownImage
            return Row(
                environment: status.spec.environment, file: status.spec.file, container: status.spec.containerName,
                managed: status.isManaged, state: state, health: active?.health, image: image,
                imageID: active?.imageID, digest: status.image?.digest,
                startedAt: active?.startedAt.map { ISO8601DateFormatter().string(from: $0) }, uptimeSeconds: uptime,
                revision: active?.labels[Labels.revision], deployedAt: active?.labels[Labels.deployedAt],
                port: status.spec.port,
                backups: status.backups.map {
                    Row.Backup(
                        name: $0.name, id: $0.id, image: $0.image, revision: $0.labels[Labels.revision],
                        deployedAt: $0.labels[Labels.deployedAt])
                }, held: holds[status.spec.containerName], failed: failures[status.spec.containerName],
                proxy: status.proxy.map { Row.Proxy(name: $0.name, state: $0.state.rawValue, image: $0.image) },
                blueGreen: status.spec.strategy == .blueGreen, engine: status.spec.engine?.description,
                tasks: status.tasksSummary)
        }
    }

    func table() -> String {
        let header = [
            "ENVIRONMENT", "CONTAINER", "STATE", "HEALTH", "IMAGE", "DIGEST", "UPTIME", "REVISION", "BACKUPS", "NOTE",
        ]
        let body = rows().map { row in
            [
                row.environment, row.container, row.state, row.health ?? "-", row.image ?? "-",
                row.digest.map(Self.short) ?? "-", row.uptimeSeconds.map(Self.uptime) ?? "-",
                row.revision.map { String($0.prefix(12)) } ?? "-", String(row.backups.count), Self.note(row),
            ]
        }
        return TextTable.lines(header, body).joined(separator: "\n") + "\n"
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(["environments": rows()]), as: UTF8.self)
    }

    /// `held at abc123 since …`, `revision def456 failed at …`, or `-`.
    static func note(_ row: Row) -> String {
        var notes: [String] = []
        if let engine = row.engine { notes.append("on \(engine)") }
        if let tasks = row.tasks { notes.append("swarm: \(tasks)") }
        if let proxy = row.proxy {
            notes.append("behind \(proxy.name) (\(proxy.state))")
        } else if row.blueGreen {
            notes.append("blue-green, but its proxy is missing: nothing serves port \(row.port); run apply")
        }
        if let held = row.held { notes.append("held at \(held.revision.prefix(12)) since \(held.since) (rollback)") }
        if let failed = row.failed { notes.append("\(failed.named) failed at \(failed.time)") }
        return notes.isEmpty ? "-" : notes.joined(separator: "; ")
    }

    static func short(_ digest: String) -> String {
        let hex = digest.hasPrefix("sha256:") ? digest.dropFirst(7) : Substring(digest)
        return "sha256:" + hex.prefix(12)
    }

    static func uptime(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
        if seconds < 86400 { return "\(seconds / 3600)h\(seconds % 3600 / 60)m" }
        return "\(seconds / 86400)d\(seconds % 86400 / 3600)h"
    }
}
