import Foundation
import ReconcileCore

/// A client that sends GET requests to a local port on a thread of its own, as a user's traffic
/// during a deploy: a new connection per request, or one keep-alive connection for all of them.
/// It counts what failed, which versions answered (`"version":"v1"` in the body) and the longest
/// time between two answers.
public final class LoadClient: @unchecked Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var ok = 0
        public var failed = 0
        /// The longest time from one good answer to the next.
        public var longestGap: Duration = .zero
        /// Answers by version.
        public var versions: [String: Int] = [:]
        /// The first few failures, in words.
        public var errors: [String] = []

        public var description: String {
            "\(ok) ok, \(failed) failed, longest gap \(longestGap.milliseconds)ms, versions \(versions.sorted { $0.key < $1.key }), errors \(errors)"
        }
    }

    private let port: Int
    private let path: String
    private let keepAlive: Bool
    private let interval: Duration
    private let state = Locked((report: Report(), stopped: false, finished: false))

    public init(port: Int, path: String = "/health", keepAlive: Bool, interval: Duration = .milliseconds(20)) {
        self.port = port
        self.path = path
        self.keepAlive = keepAlive
        self.interval = interval
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.start()
    }

    /// Stops the client and returns what it saw.
    public func stop() -> Report {
        state.withLock { $0.stopped = true }
        while !state.withLock({ $0.finished }) { usleep(5000) }
        return state.withLock { $0.report }
    }

    private func run() {
        var connection: Int32 = -1
        var lastGood = ContinuousClock.now
        while !state.withLock({ $0.stopped }) {
            let result = request(&connection)
            let now = ContinuousClock.now
            state.withLock { state in
                switch result {
                case .success(let version):
                    state.report.ok += 1
                    state.report.versions[version, default: 0] += 1
                    state.report.longestGap = max(state.report.longestGap, now - lastGood)
                    lastGood = now
                case .failure(let error):
                    state.report.failed += 1
                    if state.report.errors.count < 5 { state.report.errors.append(error.description) }
                }
            }
            if case .failure = result, connection >= 0 {
                close(connection)
                connection = -1
            }
            if !keepAlive, connection >= 0 {
                close(connection)
                connection = -1
            }
            usleep(UInt32(interval.milliseconds * 1000))
        }
        if connection >= 0 { close(connection) }
        state.withLock { $0.finished = true }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    private func request(_ connection: inout Int32) -> Result<String, Failure> {
        if connection < 0 {
            connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var limit = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(connection, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else { return .failure(Failure(description: "connect: \(errno)")) }
        }
        let text =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count
        else { return .failure(Failure(description: "send: \(errno)")) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let response = Self.complete(buffer) {
                guard response.status == 200 else { return .failure(Failure(description: "status \(response.status)")) }
                return .success(Self.version(response.body))
            }
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                return .failure(
                    Failure(description: count == 0 ? "closed after \(buffer.count) bytes" : "recv: \(errno)"))
            }
            buffer += chunk[0..<count]
        }
    }

    /// The status and body once a whole response (headers and Content-Length bytes) is in.
    static func complete(_ buffer: [UInt8]) -> (status: Int, body: String)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = buffer.firstRange(of: separator) else { return nil }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let length =
            lines.dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
        let body = buffer[end.upperBound...]
        guard body.count >= length else { return nil }
        return (status, String(decoding: body.prefix(length), as: UTF8.self))
    }

    static func version(_ body: String) -> String {
        guard let range = body.range(of: #""version":""#) else { return "?" }
        return String(body[range.upperBound...].prefix { $0 != "\"" })
    }
}
