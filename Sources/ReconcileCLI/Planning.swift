import ReconcileCore
import ReconcileSystem

/// What `diff` starts from: each environment with its secrets resolved, the host as observed once,
/// and a plan per environment (secret problems first among its warnings). `apply` plans each
/// environment again under its lock (see `Reconciler`).
struct Planning {
    let desired: [DesiredEnvironment]
    let host: HostState
    let plans: [EnvironmentPlan]

    static func make(
        _ specs: [EnvironmentSpec], engine: any ContainerEngine, key: [UInt8]?, context: CommandContext
    ) async throws -> Planning {
        let host = try await Observer(engine: engine, hostPorts: context.hostPorts).observe(specs)
        let desired = specs.map { desiredEnvironment($0, key: key, context: context) }
        return Planning(desired: desired, host: host, plans: desired.map { Differ.plan($0, host: host) })
    }

    /// The spec with its secret values resolved (the process environment, then `secrets_file`).
    static func desiredEnvironment(_ spec: EnvironmentSpec, key: [UInt8]?, context: CommandContext)
        -> DesiredEnvironment
    {
        let secrets = SecretResolver(environment: context.environment).resolve(spec)
        return DesiredEnvironment(
            spec: spec, secretValues: secrets.values, fingerprintKey: key, warnings: secrets.problems)
    }

    /// The host's fingerprint key when this user's state directory has one; never creates it.
    static func existingKey(stateDir: String?, context: CommandContext) -> [UInt8]? {
        let path = StateDirectory.path(stateDir, environment: context.environment)
        return try? FileStateStore(path: path, create: false).fingerprintKey(create: false)
    }
}
