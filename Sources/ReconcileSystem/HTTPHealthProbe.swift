import AsyncHTTPClient
import Foundation
import NIOCore
import ReconcileCore

/// GETs a container's published port with async-http-client; never throws, every failure is an
/// answer. `timeout` bounds the whole exchange (connect, head and body): a server that answers its
/// headers and then stalls the body is cut off at the same deadline.
public struct HTTPHealthProbe: HealthProbe {
    public init() {}

    public func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
        let name = host.contains(":") ? "[\(host)]" : host
        var request = HTTPClientRequest(url: "http://\(name):\(port)\(path)")
        request.method = .GET
        let started = ContinuousClock.now
        do {
            let prepared = request
            let (status, body) = try await Deadline.run(timeout) {
                let response = try await HTTPClient.shared.execute(
                    prepared, timeout: .milliseconds(timeout.milliseconds))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), String(buffer: body))
            }
            return HTTPAnswer(status: status, body: body, latency: ContinuousClock.now - started)
        } catch {
            return HTTPAnswer(
                status: nil, error: Self.describe(error, timeout: timeout), latency: ContinuousClock.now - started)
        }
    }

    static func describe(_ error: Error, timeout: Duration) -> String {
        let text = "\(error)"
        if error is DeadlineExceeded {
            return "no complete answer within \(Quantities.format(timeout))"
        }
        if let clientError = error as? HTTPClientError, clientError == .deadlineExceeded || clientError == .readTimeout
        {
            return "no answer within \(Quantities.format(timeout))"
        }
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("reset") { return "connection reset" }
        if text.contains("remoteConnectionClosed") { return "connection closed before an answer" }
        return String(text.prefix(200))
    }
}
