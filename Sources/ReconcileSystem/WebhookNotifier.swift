import AsyncHTTPClient
import Foundation
import NIOCore
import ReconcileCore

/// Posts notifications as JSON (`Content-Type: application/json`) with AsyncHTTPClient. The whole
/// exchange is bounded by `timeout` (5 s): a dead or slow webhook delays a deploy's report by at
/// most that, and never changes its outcome. A failure is reported once per webhook, with the URL
/// redacted, until a post to it succeeds again.
public final class WebhookNotifier: Notifier {
    private let timeout: Duration
    private let warn: @Sendable (String) -> Void
    private let failing = Locked(Set<String>())

    public init(timeout: Duration = .seconds(5), warn: @escaping @Sendable (String) -> Void) {
        self.timeout = timeout
        self.warn = warn
    }

    public func send(_ notification: DeployNotification, to url: String) async {
        let shown = WebhookURL.redacted(url)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "reconcile")
            request.body = .bytes(ByteBuffer(bytes: Array(try encoder.encode(notification))))
            let timeout = self.timeout
            let prepared = request
            let status = try await Deadline.run(timeout) {
                let response = try await HTTPClient.shared.execute(
                    prepared, timeout: .milliseconds(timeout.milliseconds))
                _ = try await response.body.collect(upTo: 1 << 20)
                return response.status.code
            }
            guard (200..<300).contains(status) else {
                report(shown, "answered \(status)")
                return
            }
            failing.withLock { _ = $0.remove(shown) }
        } catch {
            let text = "\(error)"
            if error is DeadlineExceeded || text.contains("deadlineExceeded") || text.contains("Timeout") {
                report(shown, "did not answer within \(Quantities.format(timeout))")
            } else {
                report(shown, "cannot be reached (\(Self.reason(error)))")
            }
        }
    }

    private func report(_ shown: String, _ problem: String) {
        let first = failing.withLock { $0.insert(shown).inserted }
        if first { warn("webhook \(shown) \(problem); the deploy is not affected (said once until it works again)") }
    }

    /// The error in words, without the URL (it may hold a token).
    static func reason(_ error: Error) -> String {
        let text = "\(error)"
        if text.contains("connectTimeout") { return "connect timed out" }
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("remoteConnectionClosed") { return "the connection was closed" }
        if text.contains("NXDOMAIN") || text.contains("getaddrinfo") { return "the host name does not resolve" }
        return "network error"
    }
}
