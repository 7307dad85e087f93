import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

@testable import ReconcileDocker

/// Issue 8, class 6: every numeric field, given absurd values, is either refused by validation
/// with its range named, or turned into a container body, a gate bound and a lock lifetime
/// without trapping. A trap here crashes the test process, so a regression cannot pass unseen.
struct AbsurdNumberTests {
    static let fields = [
        "stop_timeout: %@", "resources: {cpus: %@}", "resources: {memory: %@}", "health: {startup: %@}",
        "health: {interval: %@}", "health: {timeout: %@}", "health: {attempts: %@}",
        "docker_healthcheck: {test: [CMD, x], interval: %@}", "docker_healthcheck: {test: [CMD, x], timeout: %@}",
        "docker_healthcheck: {test: [CMD, x], start_period: %@}", "docker_healthcheck: {test: [CMD, x], retries: %@}",
        "performance: {max_p95: %@}", "performance: {requests: %@}", "backups: %@", "port: %@", "container_port: %@",
    ]
    static let values = [
        "1e300", "-1e300", "1e-300", "-1", "0", ".nan", ".inf", "-.inf", "99999999999999999999", "9999999h",
        "99999999999999999999h", "1e300s", "0.0000001ms", "106751991167300s", "2562047788015h",
        "1.7976931348623157e308",
        "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1024g", "8796093022208k",
        "9223372036854775807b", "1h", "24h", "59m", "0s",
    ]

    @Test(arguments: fields)
    func absurdValuesAreRefusedOrHandled(_ field: String) throws {
        for value in Self.values {
            let line = field.replacingOccurrences(of: "%@", with: value)
            let yaml =
                field.hasPrefix("port:")
                ? "service: a\nimage: b\n\(line)\n" : "service: a\nimage: b\nport: 8001\n\(line)\n"
            switch SpecParser.parse(Array(yaml.utf8), file: "s.yml", defaultEnvironment: "staging") {
            case .failure(let failure):
                let message = failure.issues.map(\.description).joined(separator: "\n")
                #expect(
                    ["between", "at most", "expected", "longer than any", "has no unit"].contains {
                        message.contains($0)
                    },
                    "\(line): \(message)")
            case .success(let parsed):
                // Everything apply computes from the numbers must stay finite and in range.
                let spec = parsed.spec
                let body = try CreateContainerBody(
                    ContainerCreation(desired: DesiredEnvironment(spec: spec), deployedAt: Date())
                ).json()
                #expect(!body.isEmpty)
                #expect(spec.gateBound() > .zero && spec.deployBound < .seconds(400 * 86400), "\(line)")
                _ = Quantities.format(spec.deployBound)
                _ = spec.deployBound.milliseconds
                _ = spec.stopTimeout.wholeSecondsRoundedUp
            }
        }
    }

    @Test func conversionsSaturateInsteadOfTrapping() {
        #expect(Int64(saturating: 1e300) == .max)
        #expect(Int64(saturating: -1e300) == .min)
        #expect(Int64(saturating: .nan) == 0)
        #expect(Int(saturating: 9_223_372_036_854_775_807.0) == .max)
        #expect(Duration.seconds(Int64.max).milliseconds == .max)
        #expect(Duration.seconds(Int64.max).nanoseconds == .max)
        #expect(Quantities.duration("99999999999999999999h") == nil)
        #expect(Quantities.duration("1e300s") == nil)
    }
}
