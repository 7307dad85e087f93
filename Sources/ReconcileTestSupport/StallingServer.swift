import Foundation

/// A hostile HTTP server for tests: it reads a request, answers `response` (a status line and
/// headers, maybe part of a body) and then keeps the connection open without another byte, as a
/// server that hangs mid-body would. On TCP loopback, or on a unix socket (an engine that stalls).
public final class StallingServer: @unchecked Sendable {
    /// The TCP port (0 for a unix socket).
    public private(set) var port: Int = 0
    public let socketPath: String?
    private let listener: Int32
    private let lock = NSLock()
    private var clients: [Int32] = []
    private var closed = false

    /// Listens on a free loopback port, or on `unixPath`.
    public init(unixPath: String? = nil, response: String) throws {
        socketPath = unixPath
        if let unixPath {
            listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            unlink(unixPath)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(unixPath.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                throw StallingServerError("socket path too long")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (index, byte) in bytes.enumerated() { buffer[index] = byte }
            }
            let listener = listener
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
                }
            }
            guard listener >= 0, bound, listen(listener, 16) == 0 else {
                throw StallingServerError("cannot listen on \(unixPath)")
            }
        } else {
            listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let listener = listener
            let listening = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, length) == 0 && listen(listener, 16) == 0
                        && getsockname(listener, $0, &length) == 0
                }
            }
            guard listener >= 0, listening else { throw StallingServerError("cannot listen on loopback") }
            port = Int(UInt16(bigEndian: address.sin_port))
        }
        let thread = Thread { [listener, response, weak self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                guard let self, self.keep(client) else {
                    _ = Glibc.close(client)
                    return
                }
                Self.answer(client, response)
            }
        }
        thread.start()
    }

    private func keep(_ client: Int32) -> Bool {
        lock.withLock {
            guard !closed else { return false }
            clients.append(client)
            return true
        }
    }

    /// Reads the request head, writes the response, and leaves the connection open.
    private static func answer(_ client: Int32, _ response: String) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !received.containsHeadEnd {
            let count = read(client, &buffer, buffer.count)
            if count <= 0 { return }
            received += buffer[0..<count]
        }
        let bytes = Array(response.utf8)
        _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
    }

    public func close() {
        let (toClose, wasClosed) = lock.withLock { () -> ([Int32], Bool) in
            defer {
                closed = true
                clients = []
            }
            return (clients, closed)
        }
        guard !wasClosed else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        _ = Glibc.close(listener)
        for client in toClose { _ = Glibc.close(client) }
        if let socketPath { unlink(socketPath) }
    }

    deinit { close() }
}

struct StallingServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Array where Element == UInt8 {
    fileprivate var containsHeadEnd: Bool {
        count >= 4
            && (0...(count - 4)).contains {
                self[$0] == 13 && self[$0 + 1] == 10 && self[$0 + 2] == 13 && self[$0 + 3] == 10
            }
    }
}
