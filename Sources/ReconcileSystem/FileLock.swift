import Foundation

/// An exclusive lock per environment across processes, with `flock(2)` on a file in the state
/// directory. The kernel releases it when the holder exits, so a crashed holder never leaves a
/// stale lock. The file holds who has it (pid, host, since) for the message a waiter sees.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var descriptor: Int32 = -1

    public init(path: String) { self.path = path }

    deinit { release() }

    /// Waits up to `timeout` for the lock; throws `LockError.busy` naming the holder when it stays taken.
    public func acquire(timeout: Duration, poll: Duration = .milliseconds(100)) async throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LockError.unusable(path: path, reason: String(cString: strerror(errno))) }
        let deadline = ContinuousClock.now + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < deadline else {
                let holder =
                    (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw LockError.busy(path: path, holder: holder.isEmpty ? "another process" : holder)
            }
            try await Task.sleep(for: poll)
        }
        descriptor = fd
        let since = ISO8601DateFormatter().string(from: Date())
        let holder = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName) since \(since)\n"
        ftruncate(fd, 0)
        _ = holder.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    public func release() {
        guard descriptor >= 0 else { return }
        ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }
}

/// Why the lock could not be had.
public enum LockError: Error, Sendable, CustomStringConvertible {
    case busy(path: String, holder: String)
    case unusable(path: String, reason: String)

    public var description: String {
        switch self {
        case .busy(let path, let holder):
            return "another apply holds the lock \(path) (\(holder)); wait for it, or raise --lock-timeout"
        case .unusable(let path, let reason):
            return "cannot open the lock file \(path): \(reason); check --state-dir"
        }
    }
}
