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

    /// Opens the local socket and starts accepting; ssh runs only when a connection comes.
    public static func start(_ endpoint: DockerEndpoint, options: [String] = [], searchPath: String? = nil) throws
        -> SSHTunnel
    {
        guard case .ssh(let user, let host, let port) = endpoint.transport else {
            throw TunnelError("\(endpoint) is not an ssh:// engine")
        }
        var template = Array((NSTemporaryDirectory() + "/reconcile-ssh-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        guard made else { throw TunnelError("cannot make a private folder for the ssh socket: \(Self.errorText())") }
        let folder = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let path = folder + "/docker.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw TunnelError("cannot open a socket: \(Self.errorText())") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(listener)
            throw TunnelError("the temporary folder's path is too long for a socket: \(path)")
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

    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        // shutdown(2) wakes the accept(2) blocked in the other thread; close alone would not.
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(socketPath)
        rmdir(folder)
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

    /// Runs ssh with `connection` as its standard input and output; records what it said if it failed.
    private func dial(_ connection: Int32) {
        let input = fcntl(connection, F_DUPFD_CLOEXEC, 0)
        guard input >= 0 else {
            close(connection)
            return
        }
        let arguments = self.arguments
        let environment = searchPath.map { Environment.inherit.updating(["PATH": $0]) } ?? .inherit
        Task.detached { [weak self] in
            do {
                let result = try await run(
                    .name("ssh"), arguments: Arguments(arguments), environment: environment,
                    input: .fileDescriptor(.init(rawValue: input), closeAfterSpawningProcess: true),
                    output: .fileDescriptor(.init(rawValue: connection), closeAfterSpawningProcess: true),
                    error: .string(limit: 1 << 14))
                if case .exited(let code) = result.terminationStatus, code == 0 { return }
                let said = result.standardError.split(separator: "\n").last.map(String.init) ?? ""
                self?.record(said.isEmpty ? "ssh ended with \(result.terminationStatus)" : said)
            } catch {
                self?.record("cannot run ssh (is the OpenSSH client installed and on PATH?)")
            }
        }
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
