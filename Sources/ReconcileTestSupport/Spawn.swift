import Foundation

/// Starts programs with posix_spawn and waits for exactly the pid it started. Not Foundation's
/// Process: it hangs inside async tests on Linux here, and its child reaping took children of
/// swift-subprocess running beside it in the same test process ("No child processes").
public enum Spawn {
    /// Where the child's standard streams go.
    public enum Streams {
        /// stdout and stderr to this file (`/dev/null` to discard them).
        case file(String)
        /// stdin, stdout and stderr all this terminal (a /dev/pts path); `master` is closed in the child.
        case terminal(String, master: Int32)
    }

    /// Starts `path` with `arguments` in a process group of its own; returns its pid.
    /// Output goes to `output` (a file path) when given, else nowhere.
    public static func start(
        _ path: String, _ arguments: [String], environment: [String: String] = [:], output: String? = nil
    )
        throws -> pid_t
    {
        try start(path, arguments, environment: environment, streams: .file(output ?? "/dev/null"))
    }

    public static func start(_ path: String, _ arguments: [String], environment: [String: String], streams: Streams)
        throws -> pid_t
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        switch streams {
        case .file(let output):
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .terminal(let slave, let master):
            posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
            posix_spawn_file_actions_addclose(&actions, master)
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pid: pid_t = 0
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnError("cannot start \(path): error \(result)") }
        return pid
    }

    /// Waits for `pid` to end and returns its exit status (-1 when it was killed).
    /// -2 when it was not ours to wait for (already reaped by someone else): never a false 0.
    public static func wait(_ pid: pid_t) -> Int32 {
        // 0 or -1 would wait for any child: one of swift-subprocess's, which then reports
        // "No child processes" for its own.
        guard pid > 0 else { return -2 }
        var status: Int32 = 0
        while true {
            if waitpid(pid, &status, 0) != -1 { break }
            if errno == EINTR { continue }
            return -2
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }

    /// Like `wait`, without holding a thread of the concurrency pool while the child runs: polls
    /// every 20 ms. On 2 cores the pool has 2 threads; tests that block them in `waitpid` starved
    /// every other test's tasks for seconds (a log polled late, a signal sent after the end).
    public static func finished(_ pid: pid_t) async -> Int32 {
        guard pid > 0 else { return -2 }
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result == -1 && errno != EINTR { return -2 }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }

    /// Waits until the file at `path` contains `text` (a step a spawned apply has reached).
    public static func waitFor(_ text: String, in path: String, within limit: Duration = .seconds(60)) async throws {
        try await waitFor(anyOf: [text], in: path, within: limit)
    }

    /// Waits until the file holds one of `texts`.
    public static func waitFor(anyOf texts: [String], in path: String, within limit: Duration = .seconds(60))
        async throws
    {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let log = try? String(contentsOfFile: path, encoding: .utf8), texts.contains(where: log.contains) {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let shown = texts.map { "\"\($0)\"" }.joined(separator: " or ")
        throw SpawnError("\(path) did not show \(shown) within \(limit)")
    }
}

/// A program could not be started, or did not reach a step in time.
public struct SpawnError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
