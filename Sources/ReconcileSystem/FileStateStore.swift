import Foundation
import ReconcileCore

/// The state directory on disk. It guarantees:
/// - the directory is created 0700, and an existing one is refused when another user owns it or
///   others may write to it (tightened to 0700 when only readable by others);
/// - every file is opened with `O_NOFOLLOW` and created 0600, so a symlink planted in its place is
///   refused instead of followed;
/// - records and the key are written to a temporary file, synced and renamed into place: a crash
///   leaves the old or the new content, never half of it.
///
/// Layout: `journal.jsonl`, `fingerprint.key`, `<container>.deploy.json` (a deploy in flight),
/// `<container>.failed.json` (the desired state that last failed), `<container>.hold.json` (a rollback's hold).
public struct FileStateStore: StateStore {
    public let location: String

    /// Opens (and with `create`, makes) the state directory at `path`. Without `create` a missing
    /// directory is fine: reads find nothing, and writes fail with a clear error.
    public init(path: String, create: Bool = true) throws {
        location = path
        try PrivateDirectory.prepare(path, create: create, role: "the state directory", option: "--state-dir")
        if create { sweepTemporaryFiles() }
    }

    /// Removes `.<name>.<pid>.<n>.tmp` files whose writer is gone (killed between writing and
    /// renaming). A writer that still runs keeps its file.
    func sweepTemporaryFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: location) else { return }
        for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            let parts = name.split(separator: ".")
            guard parts.count >= 4, let pid = Int32(parts[parts.count - 3]), pid > 0 else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH {
                unlink((location as NSString).appendingPathComponent(name))
            }
        }
    }

    // MARK: - Journal

    public func appendJournal(_ entry: JournalEntry) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = try encoder.encode(entry) + Data("\n".utf8)
        let fd = try openFile("journal.jsonl", O_WRONLY | O_APPEND | O_CREAT)
        defer { close(fd) }
        try writeAll(fd, line, file: "journal.jsonl")
    }

    public func journal() throws -> [JournalEntry] {
        guard let data = try readFile("journal.jsonl") else { return [] }
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(JournalEntry.self, from: $0) }
    }

    // MARK: - Deploy records, failed deploys, holds: one JSON file each per container

    public func deployRecord(_ container: String) throws -> DeployRecord? {
        if let record = try decoded(DeployRecord.self, "\(container).deploy.json") { return record }
        // An apply of an earlier version marked a container whose gate was interrupted this way.
        guard let legacy = try readFile("\(container).unverified") else { return nil }
        var record = DeployRecord(container: container, step: .gating, pid: 0, since: "")
        record.gatingID = String(decoding: legacy, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return record.gatingID?.isEmpty == false ? record : nil
    }

    public func saveDeployRecord(_ record: DeployRecord) throws { try save(record, "\(record.container).deploy.json") }

    public func clearDeployRecord(_ container: String) throws {
        try remove("\(container).deploy.json")
        try remove("\(container).unverified")
    }

    public func failedDeploy(_ container: String) throws -> FailedDeploy? {
        try decoded(FailedDeploy.self, "\(container).failed.json")
    }

    public func saveFailedDeploy(_ failed: FailedDeploy) throws { try save(failed, "\(failed.container).failed.json") }

    public func clearFailedDeploy(_ container: String) throws { try remove("\(container).failed.json") }

    public func hold(_ container: String) throws -> Hold? { try decoded(Hold.self, "\(container).hold.json") }

    public func saveHold(_ hold: Hold) throws { try save(hold, "\(hold.container).hold.json") }

    public func clearHold(_ container: String) throws { try remove("\(container).hold.json") }

    /// A record, or nil when there is none (or it cannot be decoded: a record torn by hand is no record).
    private func decoded<Value: Decodable>(_ type: Value.Type, _ name: String) throws -> Value? {
        try readFile(name).flatMap { try? JSONDecoder().decode(type, from: $0) }
    }

    private func save<Value: Encodable>(_ value: Value, _ name: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try replace(name, with: try encoder.encode(value))
    }

    private func remove(_ name: String) throws {
        if unlink("\(location)/\(name)") != 0 && errno != ENOENT { throw failure("cannot remove \(name)", errno) }
    }

    // MARK: - Fingerprint key

    public func fingerprintKey(create: Bool) throws -> [UInt8]? {
        if let data = try readFile("fingerprint.key") {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if let key = Self.bytes(hex: text), key.count == 32 { return key }
            throw StateError(
                "the fingerprint key \(location)/fingerprint.key is not 64 hex digits; remove it to make a new one "
                    + "(secret fingerprints of running containers then read as changed once)")
        }
        guard create else { return nil }
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // link(2) refuses an existing name: of two applies making the key at once, one wins and the
        // other reads the winner's, so fingerprints never differ between them.
        let temporary = ".fingerprint.key.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = try openFile(temporary, O_WRONLY | O_CREAT | O_EXCL)
        defer { unlink("\(location)/\(temporary)") }
        do {
            try writeAll(fd, Data((Self.hex(key) + "\n").utf8), file: "fingerprint.key")
            fsync(fd)
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        if link("\(location)/\(temporary)", "\(location)/fingerprint.key") != 0 {
            guard errno == EEXIST else { throw failure("cannot write fingerprint.key", errno) }
            return try fingerprintKey(create: false)
        }
        return key
    }

    // MARK: - Files

    /// Opens a file in the directory without following a symlink, created 0600.
    private func openFile(_ name: String, _ flags: Int32) throws -> Int32 {
        // O_NONBLOCK: a FIFO planted in a file's place must not block the open.
        let fd = open("\(location)/\(name)", flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard fd >= 0 else {
            if errno == ELOOP {
                throw StateError(
                    "\(location)/\(name) is a symbolic link; reconcile does not follow links in its state directory. Remove it"
                )
            }
            throw failure("cannot open \(name)", errno)
        }
        do {
            try checkRegular(fd, name)
        } catch {
            close(fd)
            throw error
        }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0 { fchmod(fd, 0o600) }
        return fd
    }

    /// Refuses anything but a regular file with one name: a FIFO would block, a device is not
    /// ours, and a hard link would let a write reach a file elsewhere.
    private func checkRegular(_ fd: Int32, _ name: String) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("cannot check \(name)", errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw StateError("\(location)/\(name) is not a regular file; remove it")
        }
        guard info.st_nlink <= 1 else {
            throw StateError(
                "\(location)/\(name) has other names (hard links); reconcile does not write through them. Remove it")
        }
    }

    /// The whole content of a file, or nil when there is none.
    private func readFile(_ name: String) throws -> Data? {
        let fd = open("\(location)/\(name)", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            if errno == ELOOP {
                throw StateError(
                    "\(location)/\(name) is a symbolic link; reconcile does not follow links in its state directory. Remove it"
                )
            }
            throw failure("cannot read \(name)", errno)
        }
        defer { close(fd) }
        try checkRegular(fd, name)
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read \(name)", errno)
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Writes `data` to a new temporary file, syncs it and renames it over `name`.
    private func replace(_ name: String, with data: Data) throws {
        let temporary = ".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = try openFile(temporary, O_WRONLY | O_CREAT | O_EXCL)
        do {
            try writeAll(fd, data, file: name)
            fsync(fd)
            close(fd)
        } catch {
            close(fd)
            unlink("\(location)/\(temporary)")
            throw error
        }
        guard rename("\(location)/\(temporary)", "\(location)/\(name)") == 0 else {
            let code = errno
            unlink("\(location)/\(temporary)")
            throw failure("cannot write \(name)", code)
        }
    }

    private func writeAll(_ fd: Int32, _ data: Data, file: String) throws {
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { bytes -> Int in
                guard let base = bytes.baseAddress else { return 0 }
                return write(fd, base + offset, data.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("cannot write \(file)", errno)
            }
            offset += written
        }
    }

    private func failure(_ what: String, _ code: Int32) -> StateError {
        StateError(
            "\(what) in the state directory \(location): \(String(cString: strerror(code)))"
                + PrivateDirectory.hint(code, option: "--state-dir or RECONCILE_STATE_DIR"))
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func bytes(hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
