import ReconcileCore
import Testing

struct HealthGateTests {
    var policy: HealthPolicy {
        var policy = HealthPolicy()
        policy.startup = .seconds(15)
        policy.interval = .seconds(5)
        policy.attempts = 3
        return policy
    }
    let fail = ProbeResult(passed: false, message: "GET /health returned 503")
    let pass = ProbeResult(passed: true, message: "GET /health returned 200")

    @Test func readyAtOncePassesOnTheFirstProbe() {
        var gate = HealthGate(policy: policy)
        #expect(gate.started() == .probe(after: .zero))
        #expect(gate.probed(pass, at: .milliseconds(30)) == .passed(attempt: 1, after: .milliseconds(30)))
    }

    @Test func startupFailuresDoNotCountAndAreProbedQuickly() {
        var gate = HealthGate(policy: policy)
        _ = gate.started()
        #expect(gate.probed(fail, at: .zero) == .probe(after: .milliseconds(100)))
        #expect(gate.probed(fail, at: .seconds(3)) == .probe(after: .milliseconds(100)))
        #expect(gate.countedFailures == 0)
        #expect(
            gate.probed(pass, at: .seconds(3) + .milliseconds(200)) == .passed(attempt: 3, after: .milliseconds(3200)))
    }

    @Test func failsAfterTheCountedAttempts() {
        var gate = HealthGate(policy: policy)
        _ = gate.started()
        #expect(gate.probed(fail, at: .seconds(15)) == .probe(after: .seconds(5)))
        #expect(gate.probed(fail, at: .seconds(20)) == .probe(after: .seconds(5)))
        #expect(
            gate.probed(fail, at: .seconds(25))
                == .failed(
                    reason: "health /health never passed: 3 probes failed in 25s; last: GET /health returned 503"))
    }

    @Test func neverWaitsPastTheBudget() {
        var gate = HealthGate(policy: policy)
        _ = gate.started()
        // budget = 15s + 3 × 5s = 30s
        #expect(gate.probed(fail, at: .seconds(28)) == .probe(after: .seconds(2)))
        guard case .failed = gate.probed(fail, at: .seconds(30)) else {
            Issue.record("gate did not fail at the budget")
            return
        }
    }

    @Test func exitFailsAtOnce() {
        var gate = HealthGate(policy: policy)
        _ = gate.started()
        _ = gate.probed(fail, at: .zero)
        #expect(
            gate.containerExited(code: 3, at: .milliseconds(1200))
                == .failed(reason: "container exited with code 3 1.2s after start"))
        #expect(gate.probed(pass, at: .seconds(2)) == .failed(reason: "the gate has already finished"))
    }
}
