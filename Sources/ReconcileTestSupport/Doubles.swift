import Foundation
import ReconcileCore

/// A clock that only moves when something sleeps on it, or when a test advances it.
public final class ManualClock: DeployClock, Sendable {
    private let current = Locked(Duration.zero)

    public init() {}

    public func now() -> Duration { current.withLock { $0 } }

    public func sleep(for duration: Duration) async throws { advance(by: duration) }

    public func advance(by duration: Duration) { current.withLock { $0 += duration } }
}

/// Answers probes from a script: a function of the path and how many times it was asked.
public final class ScriptedProbe: HealthProbe, Sendable {
    private let counts = Locked([String: Int]())
    private let answer: @Sendable (_ path: String, _ call: Int) -> HTTPAnswer

    public init(_ answer: @escaping @Sendable (_ path: String, _ call: Int) -> HTTPAnswer) { self.answer = answer }

    /// Every path answers 200 with a healthy JSON body.
    public static func healthy() -> ScriptedProbe {
        ScriptedProbe { _, _ in HTTPAnswer(status: 200, body: #"{"status":"healthy"}"#, latency: .milliseconds(3)) }
    }

    public func get(host: String, port: Int, path: String, timeout: Duration) async -> HTTPAnswer {
        answer(path, nextCall(path))
    }

    private func nextCall(_ path: String) -> Int {
        counts.withLock { counts in
            counts[path, default: 0] += 1
            return counts[path] ?? 1
        }
    }

    public func calls(_ path: String) -> Int { counts.withLock { $0[path] ?? 0 } }
}

/// Collects deploy events for assertions.
public final class EventLog: Sendable {
    private let events = Locked([DeployEvent]())

    public init() {}

    public func record(_ event: DeployEvent) { events.withLock { $0.append(event) } }

    public var all: [DeployEvent] { events.withLock { $0 } }
}
