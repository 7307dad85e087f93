import Foundation
import ReconcileCore

/// Each blue-green proxy's folder, `<state directory>/proxy/<proxy name>/`: the generated
/// `haproxy.cfg` and the admin socket HAProxy makes there. The folder is mounted into the proxy
/// container at the same path the engine sees, so reconcile and the engine must share it (the
/// engine on this host; reconcile in a container mounts the state directory at the same path).
public struct ProxyFolders: ProxyRuntime {
    public let root: String
    /// How long one runtime command may take, connect to answer.
    public var timeout: Duration = .seconds(2)

    /// - Parameter stateDirectory: the state directory; its `proxy` folder is made on first use.
    public init(stateDirectory: String) {
        // The engine mounts it by this path: a relative one would be refused there.
        let absolute =
            stateDirectory.hasPrefix("/")
            ? stateDirectory
            : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(stateDirectory)
        root = (absolute as NSString).appendingPathComponent("proxy")
    }

    public func folder(_ name: String) -> String { (root as NSString).appendingPathComponent(name) }

    public func prepare(_ name: String, configuration: String) throws -> String {
        try PrivateDirectory.prepare(root, create: true, role: "the proxies' folder", option: "--state-dir")
        let folder = folder(name)
        try PrivateDirectory.prepare(folder, create: true, role: "the proxy's folder", option: "--state-dir")
        let target = (folder as NSString).appendingPathComponent(ProxyConfig.configFile)
        let temporary = target + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StateError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(configuration.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StateError("cannot write \(target): \(reason)")
        }
        return folder
    }

    public func remove(_ name: String) {
        let folder = folder(name)
        for file in [ProxyConfig.configFile, ProxyConfig.adminSocket, ProxyConfig.configFile + ".tmp"] {
            unlink((folder as NSString).appendingPathComponent(file))
        }
        rmdir(folder)
    }

    public func send(_ name: String, _ command: String) async throws -> String {
        let folder = folder(name)
        let timeout = self.timeout
        return try await Deadline.run(timeout + .seconds(1)) {
            try Self.exchange(folder: folder, command: command, timeout: timeout)
        }
    }

    /// Connects to the admin socket, sends one command, reads the answer until the proxy closes.
    /// The socket is reached through the folder's descriptor (`/proc/self/fd/N/admin.sock`), so a
    /// state directory deeper than a socket address allows (108 bytes) still works, and a
    /// symbolic link put in the folder's place is not followed.
    static func exchange(folder: String, command: String, timeout: Duration) throws -> String {
        let directory = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else {
            throw ProxyError("cannot open the proxy's folder \(folder): \(String(cString: strerror(errno)))")
        }
        defer { close(directory) }
        let path = "/proc/self/fd/\(directory)/\(ProxyConfig.adminSocket)"
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw ProxyError("cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        // Whole milliseconds, at least one: a timeval of zero would mean no limit at all.
        let millis = Int(max(1, min(timeout.milliseconds, 3_600_000)))
        var limit = timeval(tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw ProxyError("the admin socket's path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let reason =
                errno == ENOENT ? "no admin socket there (the proxy does not run?)" : String(cString: strerror(errno))
            throw ProxyError("cannot reach the proxy's admin socket in \(folder): \(reason)")
        }
        let line = Array((command + "\n").utf8)
        guard line.withUnsafeBytes({ Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == line.count
        else {
            throw ProxyError("cannot send to the proxy's admin socket: \(String(cString: strerror(errno)))")
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while answer.count < 4 << 20 {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw ProxyError(
                    errno == EAGAIN || errno == EWOULDBLOCK
                        ? "the proxy's admin socket did not answer `\(command)` within \(Quantities.format(timeout))"
                        : "cannot read the proxy's answer: \(String(cString: strerror(errno)))")
            }
            answer += chunk[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
