import ReconcileCore
import ReconcileSystem

/// What diff and apply both start from: each environment with its secrets resolved, the host as
/// observed once, and a plan per environment (secret problems first among its warnings).
struct Planning {
    let desired: [DesiredEnvironment]
    let host: HostState
    let plans: [EnvironmentPlan]

    static func make(_ specs: [EnvironmentSpec], engine: any ContainerEngine, context: CommandContext) async throws
        -> Planning
    {
        let resolver = SecretResolver(environment: context.environment)
        let host = try await Observer(engine: engine, hostPorts: context.hostPorts).observe(specs)
        var desired: [DesiredEnvironment] = []
        var plans: [EnvironmentPlan] = []
        for spec in specs {
            let secrets = resolver.resolve(spec)
            let environment = DesiredEnvironment(spec: spec, secretValues: secrets.values)
            var plan = Differ.plan(environment, host: host)
            plan.warnings = secrets.problems + plan.warnings
            desired.append(environment)
            plans.append(plan)
        }
        return Planning(desired: desired, host: host, plans: plans)
    }
}
