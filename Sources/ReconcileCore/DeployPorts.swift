import Foundation

/// One HTTP answer from a container, or why there was none.
public struct HTTPAnswer: Sendable, Equatable {
    public var status: Int?
    public var body: String
    /// Why no answer came (`connection refused`, `timed out after 2s`); nil when one did.
    public var error: String?
    public var latency: Duration

    public init(status: Int?, body: String = "", error: String? = nil, latency: Duration = .zero) {
        self.status = status
        self.body = body
        self.error = error
        self.latency = latency
    }
}

/// Sends GET requests to a container's published port. `HTTPHealthProbe` is the live one.
public protocol HealthProbe: Sendable {
    func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer
}

/// Monotonic time and sleeping, so the deploy logic can be driven by a manual clock in tests.
public protocol DeployClock: Sendable {
    /// Time since an arbitrary fixed origin.
    func now() -> Duration
    func sleep(for duration: Duration) async throws
}

/// The real monotonic clock.
public struct SystemClock: DeployClock {
    private let origin = ContinuousClock.now

    public init() {}

    public func now() -> Duration { ContinuousClock.now - origin }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// Judges HTTP answers against the environment's expectations.
public enum Judge {
    public static func health(_ answer: HTTPAnswer, _ policy: HealthPolicy) -> ProbeResult {
        let request = "GET \(policy.path)"
        guard let status = answer.status else {
            return ProbeResult(
                passed: false, message: "\(request): \(answer.error ?? "no answer")", latency: answer.latency)
        }
        guard status == policy.expectStatus else {
            return ProbeResult(
                passed: false, message: "\(request) returned \(status), expected \(policy.expectStatus)",
                latency: answer.latency)
        }
        if let mismatch = jsonMismatch(answer.body, policy.expectJSON) {
            return ProbeResult(
                passed: false, message: "\(request) returned \(status) but \(mismatch)", latency: answer.latency)
        }
        return ProbeResult(passed: true, message: "\(request) returned \(status)", latency: answer.latency)
    }

    /// Nil when every expected field matches; else which one did not.
    static func jsonMismatch(_ body: String, _ expected: [String: String]) -> String? {
        guard !expected.isEmpty else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            return "the body is not a JSON object"
        }
        for key in expected.keys.sorted() {
            let want = expected[key] ?? ""
            guard let value = object[key] else { return "JSON field \(key) is missing (expected \"\(want)\")" }
            var text = "\(value)"
            if want == "true" || want == "false", let flag = value as? Bool { text = flag ? "true" : "false" }
            if text != want { return "JSON field \(key) is \"\(text)\", expected \"\(want)\"" }
        }
        return nil
    }
}
