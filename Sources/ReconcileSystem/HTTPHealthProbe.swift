import AsyncHTTPClient
import Foundation
import NIOCore
import ReconcileCore

/// GETs a container's published port with async-http-client; never throws, every failure is an answer.
public struct HTTPHealthProbe: HealthProbe {
    public init() {}

    public func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
        let name = host.contains(":") ? "[\(host)]" : host
        var request = HTTPClientRequest(url: "http://\(name):\(port)\(path)")
        request.method = .GET
        let started = ContinuousClock.now
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(timeout.milliseconds))
            let body = try await response.body.collect(upTo: 1 << 20)
            return HTTPAnswer(
                status: Int(response.status.code), body: String(buffer: body), latency: ContinuousClock.now - started)
        } catch {
            return HTTPAnswer(
                status: nil, error: Self.describe(error, timeout: timeout), latency: ContinuousClock.now - started)
        }
    }

    static func describe(_ error: Error, timeout: Duration) -> String {
        let text = "\(error)"
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
