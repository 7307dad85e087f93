extension FieldChange {
    /// Every field of a configuration, as additions (for a create).
    static func all(of config: RuntimeConfig) -> [FieldChange] {
        rows(config).map { FieldChange(field: $0.field, old: nil, new: $0.value) }
    }

    /// The fields that differ between two configurations, in a fixed order.
    static func between(_ old: RuntimeConfig, _ new: RuntimeConfig) -> [FieldChange] {
        let before = Dictionary(rows(old).map { ($0.field, $0.value) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(rows(new).map { ($0.field, $0.value) }, uniquingKeysWith: { first, _ in first })
        var order = rows(old).map(\.field)
        for row in rows(new) where before[row.field] == nil { order.append(row.field) }
        var changes: [FieldChange] = []
        for field in order.sorted(by: fieldOrder) {
            let (oldValue, newValue) = (before[field], after[field])
            if oldValue == newValue { continue }
            // An unknown secret value on this side is not evidence of a change.
            if field.hasPrefix("secrets."), oldValue != nil, newValue?.hasSuffix(RuntimeConfig.unknownSecret) == true {
                continue
            }
            changes.append(FieldChange(field: field, old: oldValue, new: newValue))
        }
        return changes
    }

    /// What the engine says the container runs that differs from what reconcile created it with
    /// (its labels): a container changed, or replaced, by hand with the labels copied. Only what
    /// reconcile sets is compared: variables the image adds, and a pinned image id, are not drift.
    static func byHand(_ actual: ActualConfig, stored: RuntimeConfig, changes: [FieldChange]) -> [FieldChange] {
        let already = Set(changes.map(\.field))
        var found: [FieldChange] = []
        func add(_ field: String, _ old: String, _ new: String) {
            if !already.contains(field) {
                found.append(FieldChange(field: field, old: "\(old) (changed by hand)", new: new))
            }
        }
        if actual.image != stored.image, !actual.image.hasPrefix("sha256:") {
            add("image", actual.image, stored.image)
        }
        let variables = Dictionary(
            actual.env.map { entry -> (String, String) in
                let parts = entry.split(separator: "=", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }, uniquingKeysWith: { _, last in last })
        for (name, value) in stored.env.sorted(by: { $0.key < $1.key }) where variables[name] != value {
            add("env.\(name)", variables[name] ?? "(unset)", value)
        }
        if let command = stored.command, actual.command != command {
            add("command", render(actual.command ?? []), render(command))
        }
        // Behind the blue-green proxy a version publishes no port: the proxy does.
        let behindProxy = stored.strategy == DeployStrategy.blueGreen.rawValue
        let port =
            behindProxy
            ? actual.bindings.isEmpty
            : actual.bindings.contains {
                $0.hostPort == stored.port && $0.containerPort == stored.containerPort
                    && ($0.hostIP == stored.bind || (["", "0.0.0.0"].contains($0.hostIP) && stored.bind == "0.0.0.0"))
            }
        if !port {
            let seen = actual.bindings.map {
                "\($0.hostIP.isEmpty ? "0.0.0.0" : $0.hostIP):\($0.hostPort)->\($0.containerPort)/tcp"
            }
            add("ports", seen.isEmpty ? "none" : seen.joined(separator: ", "), portsRow(stored))
        }
        if let replicas = actual.replicas, let wanted = stored.replicas, replicas != wanted {
            add("replicas", String(replicas), String(wanted))
        }
        // A service's tasks restart by Swarm's policy, not the container's.
        if stored.platform == nil, actual.restart != stored.restart, !(actual.restart.isEmpty && stored.restart == "no")
        {
            add("restart", actual.restart.isEmpty ? "no" : actual.restart, stored.restart)
        }
        let memory = stored.memory.flatMap(Quantities.bytes) ?? 0
        if actual.memory != memory {
            add(
                "resources.memory", actual.memory == 0 ? "none" : Quantities.format(bytes: actual.memory),
                stored.memory ?? "none")
        }
        let nanos = stored.cpus.map { Int64(saturating: ($0 * 1e9).rounded()) } ?? 0
        if actual.nanoCPUs != nanos {
            add(
                "resources.cpus", actual.nanoCPUs == 0 ? "none" : String(Double(actual.nanoCPUs) / 1e9),
                stored.cpus.map { String($0) } ?? "none")
        }
        return found
    }

    /// Secret values that changed while everything else matches.
    static func secretChanges(_ old: RuntimeConfig, _ new: RuntimeConfig) -> [FieldChange] {
        between(old, new).filter { $0.field.hasPrefix("secrets.") }
    }

    private static let order = [
        "image", "platform", "replicas", "strategy", "ports", "env", "secrets", "secrets_mode", "command", "restart",
        "resources.memory",
        "resources.cpus",
        "stop_timeout", "docker_healthcheck", "update", "placement", "publish",
    ]

    private static func fieldOrder(_ lhs: String, _ rhs: String) -> Bool {
        func rank(_ field: String) -> Int {
            order.firstIndex { field == $0 || field.hasPrefix($0 + ".") } ?? order.count
        }
        return (rank(lhs), lhs) < (rank(rhs), rhs)
    }

    private static func rows(_ config: RuntimeConfig) -> [(field: String, value: String)] {
        var rows: [(String, String)] = [
            ("image", config.image),
            ("ports", portsRow(config)),
            ("restart", config.restart),
            ("stop_timeout", config.stopTimeout),
        ]
        rows += config.env.sorted { $0.key < $1.key }.map { ("env.\($0.key)", $0.value) }
        rows += config.secrets.sorted { $0.key < $1.key }.map {
            (
                "secrets.\($0.key)",
                $0.value == RuntimeConfig.unknownSecret
                    ? "(value or fingerprint key not available) ?"
                    : $0.value.hasPrefix("hmac:") ? "(\($0.value))" : "(sha256 \($0.value))"
            )
        }
        if let strategy = config.strategy { rows.append(("strategy", strategy)) }
        if let platform = config.platform { rows.append(("platform", platform)) }
        if let replicas = config.replicas { rows.append(("replicas", String(replicas))) }
        if let update = config.update { rows.append(("update", update)) }
        if let placement = config.placement { rows.append(("placement", placement.joined(separator: ", "))) }
        if let publish = config.publish { rows.append(("publish", publish)) }
        if let mode = config.secretsMode { rows.append(("secrets_mode", mode)) }
        if let command = config.command { rows.append(("command", render(command))) }
        if let memory = config.memory { rows.append(("resources.memory", memory)) }
        if let cpus = config.cpus { rows.append(("resources.cpus", String(cpus))) }
        if let check = config.healthcheck { rows.append(("docker_healthcheck", render(check))) }
        return rows.sorted { fieldOrder($0.0, $1.0) }
    }

    /// Where the port is published: by the container itself, or by the proxy in front of it.
    private static func portsRow(_ config: RuntimeConfig) -> String {
        let mapping = "\(config.bind):\(config.port)->\(config.containerPort)/tcp"
        return config.strategy == DeployStrategy.blueGreen.rawValue ? "\(mapping) via the proxy" : mapping
    }

    private static func render(_ words: [String]) -> String {
        "[" + words.map { $0.contains(where: { " ,[]\"".contains($0) }) ? "\"\($0)\"" : $0 }.joined(separator: ", ")
            + "]"
    }
}
