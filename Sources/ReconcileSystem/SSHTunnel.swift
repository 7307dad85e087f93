import Foundation
import ReconcileCore
import ReconcileDocker
import Subprocess

/// `DOCKER_HOST=ssh://[user@]host[:port]`, the docker CLI's way: a local socket in a private
/// folder, and for each connection to it one
/// `ssh [-l USER] [-p PORT] -o ConnectTimeout=10 -o BatchMode=yes -T -- HOST docker system dial-stdio`
/// whose standard input and output are that connection. ssh reads the user's own configuration
/// and keys (ssh-agent); `RECONCILE_SSH_OPTIONS` adds options (split on spaces, no shell), as
/// GIT_SSH_COMMAND does for git. BatchMode: in cron there is nobody to type a passphrase.
public final class SSHTunnel: EngineTunnel, @unchecked Sendable {
    public let socketPath: String
    let folder: String
    let listener: Int32
    let arguments: [String]
    let searchPath: String?
    private let lock = NSLock()
    private var failure: String?
    private var stopped = false
    /// The ssh processes running now, ended by `stop()`.
    private var running: Set<pid_t> = []

    /// Opens the local socket and starts accepting; ssh runs only when a connection comes.
    public static func start(_ endpoint: DockerEndpoint, options: [String] = [], searchPath: String? = nil) throws
        -> SSHTunnel
    {
        guard case .ssh(let user, let host, let port) = endpoint.transport else {
            throw TunnelError("\(endpoint) is not an ssh:// engine")
        }
        let temporary =
            NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        var template = Array((temporary + "/reconcile-ssh-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard made else { throw TunnelError("cannot make a private folder for the ssh socket: \(Self.errorText())") }
        let folder = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let path = folder + "/docker.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else {
            let text = errorText()
            rmdir(folder)
            throw TunnelError("cannot open a socket: \(text)")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(listener)
            rmdir(folder)
            throw TunnelError(
                "the temporary folder's path is too long for a socket (\(bytes.count) bytes, at most "
                    + "\(MemoryLayout.size(ofValue: address.sun_path) - 1)): set TMPDIR to a shorter folder, such as /tmp"
            )
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            let text = errorText()
            close(listener)
            unlink(path)
            rmdir(folder)
            throw TunnelError("cannot listen on \(path): \(text)")
        }
        var arguments = ["-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-T"] + options
        if let user { arguments += ["-l", user] }
        if let port { arguments += ["-p", "\(port)"] }
        arguments += ["--", host, "docker", "system", "dial-stdio"]
        let tunnel = SSHTunnel(
            socketPath: path, folder: folder, listener: listener, arguments: arguments, searchPath: searchPath)
        let thread = Thread { tunnel.acceptLoop() }
        thread.start()
        return tunnel
    }

    private init(socketPath: String, folder: String, listener: Int32, arguments: [String], searchPath: String?) {
        self.socketPath = socketPath
        self.folder = folder
        self.listener = listener
        self.arguments = arguments
        self.searchPath = searchPath
    }

    /// The options `RECONCILE_SSH_OPTIONS` gives, split on spaces.
    public static func options(environment: [String: String]) -> [String] {
        (environment["RECONCILE_SSH_OPTIONS"] ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }

    public func lastFailure() -> String? { lock.withLock { failure } }

    /// Stops accepting, ends the ssh processes still running, and removes the socket and its
    /// folder. Safe to call twice, and from the signal thread.
    public func stop() {
        let (first, children) = lock.withLock { () -> (Bool, Set<pid_t>) in
            defer { stopped = true }
            return (!stopped, running)
        }
        guard first else { return }
        // shutdown(2) wakes the accept(2) blocked in the other thread; close alone would not.
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(socketPath)
        rmdir(folder)
        // An ssh whose remote never answers would otherwise outlive reconcile.
        for pid in children { kill(pid, SIGTERM) }
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            // Not inherited by the ssh of another connection, which would keep this one open.
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            if lock.withLock({ stopped }) {
                close(connection)
                return
            }
            dial(connection)
        }
    }

    /// Runs ssh with `connection` as its standard input and output; records what it said if it
    /// failed. Its standard error goes to an unlinked file, so that any amount of it is fine and
    /// the last line can be read afterwards.
    private func dial(_ connection: Int32) {
        let input = fcntl(connection, F_DUPFD_CLOEXEC, 0)
        guard input >= 0, let errors = try? ProcessInput.file("") else {
            if input >= 0 { close(input) }
            close(connection)
            return
        }
        let errorsCopy = fcntl(errors, F_DUPFD_CLOEXEC, 0)
        let arguments = self.arguments
        let environment = searchPath.map { Environment.inherit.updating(["PATH": $0]) } ?? .inherit
        Task.detached { [weak self] in
            defer { if errorsCopy >= 0 { close(errorsCopy) } }
            var spawned: pid_t?
            do {
                let result = try await run(
                    .name("ssh"), arguments: Arguments(arguments), environment: environment,
                    input: .fileDescriptor(.init(rawValue: input), closeAfterSpawningProcess: true),
                    output: .fileDescriptor(.init(rawValue: connection), closeAfterSpawningProcess: true),
                    error: .fileDescriptor(.init(rawValue: errors), closeAfterSpawningProcess: true)
                ) { execution in
                    spawned = execution.processIdentifier.value
                    self?.track(execution.processIdentifier.value)
                }
                if let spawned { self?.untrack(spawned) }
                if case .exited(0) = result.terminationStatus { return }
                let said = Self.lastLine(of: errorsCopy)
                let how: String
                if case .exited(let code) = result.terminationStatus {
                    how =
                        "ssh exited with code \(code)\(code == 255 ? "" : " (did `docker system dial-stdio` fail on the remote?)")"
                } else {
                    how = "ssh was ended (\(result.terminationStatus))"
                }
                self?.record(said ?? how)
            } catch {
                if let spawned { self?.untrack(spawned) }
                self?.record("cannot run ssh (is the OpenSSH client installed and on PATH?)")
            }
        }
    }

    private func track(_ pid: pid_t) {
        let late = lock.withLock { () -> Bool in
            running.insert(pid)
            return stopped
        }
        // Stopped while it was starting: it must not outlive the tunnel either.
        if late { kill(pid, SIGTERM) }
    }

    private func untrack(_ pid: pid_t) { _ = lock.withLock { running.remove(pid) } }

    /// The last non-empty line in the file, control characters shown escaped (a remote host's
    /// banner must not clear the screen); nil when it is empty.
    static func lastLine(of descriptor: Int32) -> String? {
        guard descriptor >= 0 else { return nil }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_size > 0 else { return nil }
        let length = Int(min(info.st_size, 16 << 10))
        var bytes = [UInt8](repeating: 0, count: length)
        let read = bytes.withUnsafeMutableBytes {
            pread(descriptor, $0.baseAddress, length, off_t(info.st_size) - off_t(length))
        }
        guard read > 0 else { return nil }
        let text = String(decoding: bytes.prefix(read), as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).last(where: { !$0.allSatisfy(\.isWhitespace) }) else {
            return nil
        }
        return Printable.escapingControls(String(line)).trimmingCharacters(in: .whitespaces)
    }

    private func record(_ line: String) {
        lock.withLock { failure = line.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    struct TunnelError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
