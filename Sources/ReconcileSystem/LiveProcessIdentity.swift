import Foundation
import ReconcileCore

/// Reads this process's identity from /proc (boot id, pid namespace, start time), and checks
/// another holder's process the same way when it ran on this machine in this pid namespace.
public struct LiveProcessIdentity: ProcessIdentity {
    let bootID: String?
    let pidNamespace: String?

    public init() {
        bootID = Self.firstLine("/proc/sys/kernel/random/boot_id")
        pidNamespace = Self.link("/proc/self/ns/pid")
    }

    public func current(since: Date, ttl: Duration) -> LeaseHolder {
        let formatter = ISO8601DateFormatter()
        let until = since.addingTimeInterval(ttl.seconds)
        return LeaseHolder(
            pid: getpid(), host: ProcessInfo.processInfo.hostName, since: formatter.string(from: since),
            until: formatter.string(from: until), bootID: bootID, pidNamespace: pidNamespace,
            processStart: Self.startTime(of: getpid()))
    }

    public func isAlive(_ holder: LeaseHolder) -> Bool? {
        guard let bootID, let pidNamespace, holder.bootID == bootID, holder.pidNamespace == pidNamespace else {
            return nil
        }
        guard let start = Self.startTime(of: holder.pid) else { return false }
        return holder.processStart == nil || holder.processStart == start
    }

    /// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot.
    static func startTime(of pid: Int32) -> String? {
        guard let stat = firstLine("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command come the state (field 3) and the rest; the start time is field 22.
        return fields.count > 19 ? String(fields[19]) : nil
    }

    static func firstLine(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    static func link(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path)
    }
}
