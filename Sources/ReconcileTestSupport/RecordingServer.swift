import Foundation
import ReconcileCore

/// An HTTP server on a loopback port that records the body of every request and answers 200:
/// a webhook receiver for tests. One thread; requests are read whole (headers and Content-Length).
public final class RecordingServer: @unchecked Sendable {
    public private(set) var port: Int = 0
    private let listener: Int32
    private let bodies = Locked([String]())
    private let closed = Locked(false)

    public init() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw SpawnError("cannot listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in serve() }.start()
    }

    /// The bodies received so far, in order.
    public var received: [String] { bodies.withLock { $0 } }

    public func close() {
        closed.withLock { $0 = true }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func serve() {
        while !closed.withLock({ $0 }) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 8192)
            while true {
                if let (_, body) = LoadClient.complete(buffer) {
                    bodies.withLock { $0.append(body) }
                    break
                }
                let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                buffer += chunk[0..<count]
            }
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            Glibc.close(client)
        }
    }
}
