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
        _ specs: [EnvironmentSpec], engine: any ContainerEngine, key: [UInt8]?, stateDir: String?,
        context: CommandContext
    ) async throws -> Planning {
        // An environment held by a rollback is planned at the held revision, and says so.
        let store = try? FileStateStore(
            path: StateDirectory.path(stateDir, environment: context.environment), create: false)
        var desired: [DesiredEnvironment] = []
        var notes: [String?] = []
        for spec in specs {
            if let store,
                let held = try? await HeldRevision.desired(
                    spec, key: key, store: store, release: false, context: context)
            {
                desired.append(held.desired)
                notes.append(held.note)
            } else {
                desired.append(desiredEnvironment(spec, key: key, context: context))
                notes.append(nil)
            }
        }
        let proxies = store.map { ProxyFolders(stateDirectory: $0.location) }
        var host = try await Observer(engine: engine, hostPorts: context.hostPorts, proxies: proxies).observe(specs)
        for pin in desired.compactMap(\.pin) { host.images[pin.id] = try await engine.inspectImage(pin.id) }
        let plans = zip(desired, notes).map { environment, note in
            var plan = Differ.plan(environment, host: host)
            if let note { plan.warnings.insert(note, at: 0) }
            return plan
        }
        return Planning(desired: desired, host: host, plans: plans)
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
    /// (`stateDir` is the `--state-dir` option.)
    static func existingKey(stateDir: String?, context: CommandContext) -> [UInt8]? {
        let path = StateDirectory.path(stateDir, environment: context.environment)
        return try? FileStateStore(path: path, create: false).fingerprintKey(create: false)
    }
}
