import Foundation
import ReconcileCore

/// A clock that only moves when something sleeps on it, or when a test advances it.
public final class ManualClock: DeployClock, Sendable {
    private let current = Locked(Duration.zero)

    public init() {}

    public func now() -> Duration { current.withLock { $0 } }

    public func sleep(for duration: Duration) async throws { advance(by: duration) }

    public func advance(by duration: Duration) { current.withLock { $0 += duration } }
}

/// Answers probes from a script: a function of the path and how many times it was asked.
public final class ScriptedProbe: HealthProbe, Sendable {
    private let counts = Locked([String: Int]())
    private let answer: @Sendable (_ path: String, _ call: Int) -> HTTPAnswer

    public init(_ answer: @escaping @Sendable (_ path: String, _ call: Int) -> HTTPAnswer) { self.answer = answer }

    /// Every path answers 200 with a healthy JSON body.
    public static func healthy() -> ScriptedProbe {
        ScriptedProbe { _, _ in HTTPAnswer(status: 200, body: #"{"status":"healthy"}"#, latency: .milliseconds(3)) }
    }

    public func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
        answer(path, nextCall(path))
    }

    private func nextCall(_ path: String) -> Int {
        counts.withLock { counts in
            counts[path, default: 0] += 1
            return counts[path] ?? 1
        }
    }

    public func calls(_ path: String) -> Int { counts.withLock { $0[path] ?? 0 } }
}

/// Collects deploy events for assertions.
public final class EventLog: Sendable {
    private let events = Locked([DeployEvent]())
    fileprivate let plans = Locked([EnvironmentPlan]())
    fileprivate let progressLines = Locked([String]())

    public init() {}

    public func record(_ event: DeployEvent) { events.withLock { $0.append(event) } }

    public var all: [DeployEvent] { events.withLock { $0 } }
}

extension EventLog: DeployReporter {
    public func plan(_ plan: EnvironmentPlan) { plans.withLock { $0.append(plan) } }
    public func event(_ event: DeployEvent) { record(event) }
    public func pullProgress(environment: String, line: String, milestone: Bool) {
        progressLines.withLock { $0.append(line) }
    }

    /// The plans reported, in order.
    public var reportedPlans: [EnvironmentPlan] { plans.withLock { $0 } }
    /// The pull progress lines reported, in order.
    public var progress: [String] { progressLines.withLock { $0 } }
}

/// The state directory in memory: journal, deploy records, fingerprint key. Saves can be made to fail.
public final class FakeStateStore: StateStore, Sendable {
    private struct Contents {
        var journal: [JournalEntry] = []
        var records: [String: DeployRecord] = [:]
        var failed: [String: FailedDeploy] = [:]
        var holds: [String: Hold] = [:]
        var key: [UInt8]?
        var failSaves = false
        var savedSteps: [DeployRecord.Step] = []
    }
    private let contents = Locked(Contents())

    public init(key: [UInt8]? = nil) { contents.withLock { $0.key = key } }

    public var location: String { "(memory)" }

    /// Makes every later save of a deploy record throw.
    public func failSaves() { contents.withLock { $0.failSaves = true } }

    /// Every step saved, in order.
    public var savedSteps: [DeployRecord.Step] { contents.withLock { $0.savedSteps } }

    public func appendJournal(_ entry: JournalEntry) throws { contents.withLock { $0.journal.append(entry) } }
    public func journal() throws -> [JournalEntry] { contents.withLock { $0.journal } }

    public func deployRecord(_ container: String) throws -> DeployRecord? {
        contents.withLock { $0.records[container] }
    }

    public func saveDeployRecord(_ record: DeployRecord) throws {
        try contents.withLock { contents in
            if contents.failSaves { throw StateError("disk full") }
            contents.records[record.container] = record
            contents.savedSteps.append(record.step)
        }
    }

    public func clearDeployRecord(_ container: String) throws { contents.withLock { $0.records[container] = nil } }

    public func failedDeploy(_ container: String) throws -> FailedDeploy? { contents.withLock { $0.failed[container] } }
    public func saveFailedDeploy(_ failed: FailedDeploy) throws {
        contents.withLock { $0.failed[failed.container] = failed }
    }
    public func clearFailedDeploy(_ container: String) throws { contents.withLock { $0.failed[container] = nil } }

    public func hold(_ container: String) throws -> Hold? { contents.withLock { $0.holds[container] } }
    public func saveHold(_ hold: Hold) throws { contents.withLock { $0.holds[hold.container] = hold } }
    public func clearHold(_ container: String) throws { contents.withLock { $0.holds[container] = nil } }

    public func fingerprintKey(create: Bool) throws -> [UInt8]? {
        contents.withLock { contents in
            if contents.key == nil && create { contents.key = [UInt8](repeating: 7, count: 32) }
            return contents.key
        }
    }
}

/// Revisions from a table: file → revision; files not in it are outside a repository. `commit`
/// adds a commit of a file's content, newest last.
public final class FakeRevisionStore: RevisionStore, Sendable {
    private struct Repository {
        var revisions: [String: FileRevision] = [:]
        var commits: [String: [(FileCommit, [UInt8])]] = [:]
    }
    private let repository: Locked<Repository>

    public init(_ revisions: [String: FileRevision] = [:]) { repository = Locked(Repository(revisions: revisions)) }

    public func set(_ file: String, _ revision: FileRevision?) { repository.withLock { $0.revisions[file] = revision } }

    /// Commits `content` of `file` as `sha`; the file's revision becomes it.
    public func commit(_ file: String, sha: String, content: String, subject: String = "change") {
        repository.withLock { repository in
            let commit = FileCommit(
                sha: sha, date: "2026-11-27T10:00:0\(repository.commits[file, default: []].count % 10)+00:00",
                author: "Test", subject: subject)
            repository.commits[file, default: []].append((commit, Array(content.utf8)))
            repository.revisions[file] = FileRevision(commit: sha, dirty: false)
        }
    }

    public func revision(of file: String) async throws -> FileRevision? { repository.withLock { $0.revisions[file] } }

    public func history(of file: String, limit: Int) async throws -> [FileCommit] {
        repository.withLock { Array($0.commits[file, default: []].reversed().prefix(limit).map(\.0)) }
    }

    public func contents(of file: String, at commits: [String]) async throws -> [String: [UInt8]] {
        repository.withLock { repository in
            var result: [String: [UInt8]] = [:]
            for (commit, content) in repository.commits[file, default: []] where commits.contains(commit.sha) {
                result[commit.sha] = content
            }
            return result
        }
    }

    public func resolve(_ revision: String, for file: String) async throws -> String? {
        repository.withLock { $0.commits[file, default: []].map(\.0.sha).first { $0.hasPrefix(revision) } }
    }
}

/// A process identity with a fixed pid; holders listed in `dead` are gone, holders from another
/// "machine" (a different boot id) cannot be checked.
public final class FakeIdentity: ProcessIdentity, Sendable {
    private let dead = Locked(Set<Int32>())
    public let pid: Int32

    public init(pid: Int32 = 4242) { self.pid = pid }

    public func kill(_ pid: Int32) { _ = dead.withLock { $0.insert(pid) } }

    public func current(since: Date, ttl: Duration) -> LeaseHolder {
        let formatter = ISO8601DateFormatter()
        return LeaseHolder(
            pid: pid, host: "testhost", since: formatter.string(from: since),
            until: formatter.string(from: since.addingTimeInterval(ttl.seconds)), bootID: "boot-1",
            pidNamespace: "pid:[1]", processStart: "100")
    }

    public func isAlive(_ holder: LeaseHolder) -> Bool? {
        guard holder.bootID == "boot-1" else { return nil }
        return !dead.withLock { $0.contains(holder.pid) }
    }
}

/// Secret files in memory: folder → name → value.
public final class FakeSecretFiles: SecretFileStore, Sendable {
    private let folders = Locked([String: [String: String]]())
    private let counter = Locked(0)

    public init() {}

    public var all: [String: [String: String]] { folders.withLock { $0 } }

    public func place(_ values: [String: String], for container: String, user: String?) throws -> SecretFolder {
        let number = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let path = "/fake/\(container)-\(number)"
        folders.withLock { $0[path] = values }
        return SecretFolder(
            path: path, files: Dictionary(uniqueKeysWithValues: values.keys.map { ($0, "\(path)/\($0)") }))
    }

    public func restore(_ values: [String: String], in folder: String, user: String?) throws {
        folders.withLock { $0[folder] = values }
    }

    public func remove(_ folder: String) { _ = folders.withLock { $0.removeValue(forKey: folder) } }

    public func exists(_ folder: String) -> Bool { folders.withLock { $0[folder] != nil } }

    public func folders(prefix: String) -> [String] {
        folders.withLock { $0.keys.filter { $0.hasPrefix("/fake/" + prefix) }.sorted() }
    }
}

/// A blue-green proxy in memory: the two servers of its backend, changed by the runtime commands
/// reconcile sends, and answered in HAProxy's formats. Every command is recorded.
public final class FakeProxyRuntime: ProxyRuntime, Sendable {
    struct Server {
        var address = "-"
        var serving = false
        var sessions = 0
    }

    private let servers = Locked(["live": Server(), "next": Server()])
    private let log = Locked([String]())
    private let configurations = Locked([String: String]())
    private let broken = Locked(Set<String>())

    public init() {}

    /// Commands sent, in order.
    public var commands: [String] { log.withLock { $0 } }
    /// The last configuration written per proxy.
    public func configuration(_ name: String) -> String? { configurations.withLock { $0[name] } }
    /// Makes every command starting with `prefix` fail.
    public func fail(_ prefix: String) { broken.withLock { _ = $0.insert(prefix) } }
    /// Sets a server as a person with the admin socket could.
    public func set(_ server: String, address: String, serving: Bool) {
        servers.withLock { $0[server] = Server(address: address, serving: serving) }
    }

    public func prepare(_ name: String, configuration: String) throws -> String {
        configurations.withLock { $0[name] = configuration }
        return "/state/proxy/\(name)"
    }

    public func remove(_ name: String) { log.withLock { $0.append("remove \(name)") } }

    public func send(_ name: String, _ command: String) async throws -> String {
        log.withLock { $0.append(command) }
        if broken.withLock({ $0.contains { command.hasPrefix($0) } }) {
            throw ProxyError("cannot reach the proxy's admin socket (test)")
        }
        let words = command.split(separator: " ").map(String.init)
        if command.hasPrefix("show servers state") {
            let rows = servers.withLock { servers in
                ["live", "next"].enumerated().map { index, name in
                    let server = servers[name] ?? Server()
                    return
                        "3 app \(index + 1) \(name) \(server.address) \(server.serving ? 2 : 0) \(server.serving ? 0 : 1)"
                }
            }
            return "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n"
                + rows.joined(separator: "\n") + "\n"
        }
        if command == "show stat" {
            let rows = servers.withLock { servers in
                ["live", "next"].map { "app,\($0),0,0,\(servers[$0]?.sessions ?? 0)" }
            }
            return "# pxname,svname,qcur,qmax,scur\n" + rows.joined(separator: "\n") + "\n"
        }
        if words.count >= 5, words[0] == "set", words[1] == "server" {
            let server = String(words[2].split(separator: "/").last ?? "")
            servers.withLock { servers in
                var entry = servers[server] ?? Server()
                if words[3] == "addr" { entry.address = words[4] }
                if words[3] == "state" { entry.serving = words[4] == "ready" }
                servers[server] = entry
            }
            return "\n"
        }
        return "Unknown command\n"
    }
}
