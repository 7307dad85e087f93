import Foundation
import ReconcileCLI
import ReconcileCore
import ReconcileTestSupport

/// Runs `reconcile <arguments>` against `engine` (nil: an engine that is down).
func reconcile(
    _ arguments: [String], engine: (any ContainerEngine)? = nil, environment: [String: String] = [:],
    now: Date = Date(timeIntervalSince1970: 1_700_000_600)
) async -> CommandRun {
    guard let engine else { return await runReconcile(arguments, environment: environment, now: now) }
    return await runReconcile(arguments, environment: environment, now: now) {
        try await engine.ping()
        return engine
    }
}

let stagingYAML = """
    service: app
    environment: staging
    image: acme/app:v1
    port: 18001
    env: {LOG_LEVEL: info}

    """

let productionYAML = """
    service: app
    environment: production
    image: acme/app:v1
    port: 18000
    approval: required

    """
