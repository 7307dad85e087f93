import Yams

extension SpecParser {
    /// Reads every optional field into `spec`, reporting problems to `reader`.
    static func readOptional(_ fields: [String: Node], into spec: inout EnvironmentSpec, reader: inout NodeReader) {
        if let node = fields["pull"], let value = reader.choice(node, "pull", as: PullPolicy.self) { spec.pull = value }
        if let node = fields["container_port"], let value = reader.int(node, "container_port", in: 1...65535) {
            spec.containerPort = value
        }
        if let node = fields["bind"], let value = reader.string(node, "bind") {
            if isIPAddress(value) {
                spec.bind = value
            } else {
                reader.report(node, "bind", "expected an IP address like 0.0.0.0 or 127.0.0.1, got \"\(value)\"")
            }
        }
        if let node = fields["secrets"], let names = reader.stringList(node, "secrets") {
            for (index, name) in names.enumerated() where !isVariableName(name) {
                reader.report(node, "secrets[\(index)]", "\"\(name)\" is not a variable name (letters, digits, _)")
            }
            if let duplicate = names.duplicates().first {
                reader.report(node, "secrets", "\"\(duplicate)\" is listed twice")
            }
            spec.secrets = names
        }
        if let node = fields["env"], let entries = reader.stringMap(node, "env") {
            for entry in entries {
                if !isVariableName(entry.key) {
                    reader.report(
                        entry.node, "env.\(entry.key)", "\"\(entry.key)\" is not a variable name (letters, digits, _)")
                } else if spec.secrets.contains(entry.key) {
                    reader.report(
                        entry.node, "env.\(entry.key)",
                        "is also listed in secrets; a variable is either plain or secret")
                }
                spec.env[entry.key] = entry.value
            }
        }
        if let node = fields["secrets_file"], let value = reader.string(node, "secrets_file") {
            spec.secretsFile = value
        }
        if let node = fields["secrets_mode"], let value = reader.choice(node, "secrets_mode", as: SecretsMode.self) {
            spec.secretsMode = value
        }
        if let node = fields["command"], let value = reader.stringList(node, "command") {
            if value.isEmpty {
                reader.report(node, "command", "must not be empty; leave it out to use the image's command")
            }
            spec.command = value
        }
        if let node = fields["restart"], let value = reader.choice(node, "restart", as: RestartPolicy.self) {
            spec.restart = value
        }
        if let node = fields["resources"], let resources = reader.fields(node, "resources", known: ["memory", "cpus"]) {
            if let node = resources["memory"] { spec.memory = memory(node, &reader) }
            if let node = resources["cpus"] { spec.cpus = reader.number(node, "resources.cpus", in: Limits.cpus) }
        }
        if let node = fields["stop_timeout"], let value = reader.duration(node, "stop_timeout", in: Limits.stopTimeout)
        {
            spec.stopTimeout = value
        }
        if let node = fields["docker_healthcheck"] { spec.dockerHealthcheck = dockerHealthcheck(node, &reader) }
        if let node = fields["health"] { spec.health = health(node, &reader) }
        if let node = fields["smoke"] { spec.smoke = smoke(node, &reader) }
        if let node = fields["performance"] { spec.performance = performance(node, &reader) }
        if let node = fields["backups"], let value = reader.int(node, "backups", in: 0...100) { spec.backups = value }
        if let node = fields["approval"], let value = reader.choice(node, "approval", as: Approval.self) {
            spec.approval = value
        }
        if let node = fields["notify"], let notify = reader.fields(node, "notify", known: ["webhook"]),
            let hook = notify["webhook"], let text = reader.string(hook, "notify.webhook")
        {
            if let problem = WebhookURL.problem(text) {
                reader.report(hook, "notify.webhook", problem)
            } else {
                spec.webhook = text
            }
        }
        if let node = fields["engine"] { spec.engine = engine(node, file: spec.file, &reader) }
        var strategyRead = true
        if let node = fields["strategy"] {
            if let value = reader.choice(node, "strategy", as: DeployStrategy.self) {
                spec.strategy = value
            } else {
                strategyRead = false
            }
        }
        if let node = fields["proxy"] {
            spec.proxy = proxy(node, &reader)
            // When the strategy itself is wrong, that is the one error to show.
            if spec.strategy != .blueGreen, strategyRead {
                reader.report(
                    node, "proxy",
                    "is only used with strategy: blue-green (the strategy is \(spec.strategy.rawValue)); add "
                        + "`strategy: blue-green` or remove proxy")
            }
        }
        readSwarm(fields, into: &spec, reader: &reader)
    }

    /// `engine: tcp://host:2376`, `engine: NAME` (a docker context), or
    /// `engine: {host: tcp://host:2376, tls: {ca, cert, key}}` (paths relative to the file).
    private static func engine(_ node: Node, file: String, _ reader: inout NodeReader) -> EngineTarget? {
        if case .scalar = node, let text = reader.string(node, "engine") {
            if text.contains("://") {
                if let problem = EngineTarget.hostProblem(text) {
                    reader.report(node, "engine", problem)
                    return nil
                }
                return EngineTarget(host: text)
            }
            guard EngineTarget.isContextName(text) else {
                reader.report(node, "engine", EngineTarget.hostProblem(text) ?? "not an engine")
                return nil
            }
            return EngineTarget(context: text)
        }
        guard let fields = reader.fields(node, "engine", known: ["host", "context", "tls"]) else { return nil }
        var target = EngineTarget()
        if let node = fields["host"], let text = reader.string(node, "engine.host") {
            if let problem = EngineTarget.hostProblem(text) {
                reader.report(node, "engine.host", problem)
            } else {
                target.host = text
            }
        }
        if let node = fields["context"], let text = reader.string(node, "engine.context") {
            if EngineTarget.isContextName(text) {
                target.context = text
            } else {
                reader.report(node, "engine.context", "\"\(text)\" is not a docker context name")
            }
        }
        if fields["host"] != nil, fields["context"] != nil {
            reader.report(node, "engine", "names both a host and a context; keep one")
        } else if fields["host"] == nil, fields["context"] == nil {
            reader.report(node, "engine", "needs host (unix://, tcp://, ssh://) or context")
        }
        if let node = fields["tls"], let tls = reader.fields(node, "engine.tls", known: ["ca", "cert", "key"]) {
            var paths: [String: String] = [:]
            for name in ["ca", "cert", "key"] {
                guard let value = tls[name] else {
                    reader.report(node, "engine.tls", "needs ca, cert and key (the files docker --tlsverify uses)")
                    break
                }
                if let text = reader.string(value, "engine.tls.\(name)") {
                    paths[name] = relative(text, to: file)
                }
            }
            if let host = target.host, !host.lowercased().hasPrefix("tcp://") {
                reader.report(node, "engine.tls", "is for a tcp:// engine; \(host) does not use it")
            } else if target.context != nil {
                reader.report(node, "engine.tls", "comes from the context; leave it out")
            }
            if let ca = paths["ca"], let cert = paths["cert"], let key = paths["key"] {
                target.tls = EngineTarget.TLSPaths(ca: ca, cert: cert, key: key)
            }
        }
        return target
    }

    /// `platform: swarm` and the keys only a Swarm service has (`replicas`, `update`, `placement`,
    /// `publish`): reported where they are given without it, and where they cannot go together.
    static func readSwarm(_ fields: [String: Node], into spec: inout EnvironmentSpec, reader: inout NodeReader) {
        if let node = fields["platform"], let value = reader.choice(node, "platform", as: Platform.self) {
            spec.platform = value
        }
        var settings = SwarmSettings()
        if let node = fields["replicas"], let value = reader.int(node, "replicas", in: 1...1000) {
            settings.replicas = value
        }
        if let node = fields["update"],
            let update = reader.fields(
                node, "update", known: ["parallelism", "delay", "order", "monitor", "failure_action"])
        {
            if let node = update["parallelism"], let value = reader.int(node, "update.parallelism", in: 1...1000) {
                settings.parallelism = value
            }
            if let node = update["delay"], let value = reader.duration(node, "update.delay", in: Limits.swarmDelay) {
                settings.delay = value
            }
            if let node = update["order"], let value = reader.choice(node, "update.order", as: SwarmSettings.Order.self)
            {
                settings.order = value
            }
            if let node = update["monitor"], let value = reader.duration(node, "update.monitor", in: Limits.swarmDelay)
            {
                settings.monitor = value
            }
            if let node = update["failure_action"],
                let value = reader.choice(node, "update.failure_action", as: SwarmSettings.FailureAction.self)
            {
                settings.failureAction = value
            }
        }
        if let node = fields["placement"], let placement = reader.fields(node, "placement", known: ["constraints"]),
            let list = placement["constraints"], let constraints = reader.stringList(list, "placement.constraints")
        {
            for (index, constraint) in constraints.enumerated()
            where !["==", "!="].contains(where: constraint.contains) {
                reader.report(
                    list, "placement.constraints[\(index)]",
                    "\"\(constraint)\" is not a constraint (expected node.role==worker, node.labels.zone!=eu, …)")
            }
            settings.constraints = constraints
        }
        if let node = fields["publish"], let publish = reader.fields(node, "publish", known: ["mode"]),
            let mode = publish["mode"],
            let value = reader.choice(mode, "publish.mode", as: SwarmSettings.PublishMode.self)
        {
            settings.publishMode = value
        }
        spec.swarm = settings
        // On Swarm, secrets are Swarm secrets unless the file asks for variables.
        if spec.platform == .swarm && fields["secrets_mode"] == nil && !spec.secrets.isEmpty {
            spec.secretsMode = .file
        }
        if spec.platform != .swarm {
            for key in ["replicas", "update", "placement", "publish"] {
                if let node = fields[key] {
                    reader.report(
                        node, key, "is only used with platform: swarm; add `platform: swarm` or remove \(key)")
                }
            }
        } else if spec.strategy == .blueGreen, let node = fields["strategy"] {
            reader.report(
                node, "strategy",
                "blue-green is for one container; a Swarm service rolls its tasks itself (update.order: start-first "
                    + "starts each new task before its old one stops)")
        }
    }

    /// A path from a file, relative to that file's folder unless absolute.
    static func relative(_ path: String, to file: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    private static func proxy(_ node: Node, _ reader: inout NodeReader) -> ProxySettings {
        var settings = ProxySettings()
        guard let fields = reader.fields(node, "proxy", known: ["image", "drain_timeout"]) else { return settings }
        if let node = fields["image"], let text = reader.string(node, "proxy.image") {
            switch ImageReference.parse(text) {
            case .success(let reference): settings.image = reference
            case .failure(let error):
                reader.report(node, "proxy.image", "\"\(text)\" is not an image reference: \(error.reason)")
            }
        }
        if let node = fields["drain_timeout"],
            let value = reader.duration(node, "proxy.drain_timeout", in: Limits.drainTimeout)
        {
            settings.drainTimeout = value
        }
        return settings
    }

    private static func memory(_ node: Node, _ reader: inout NodeReader) -> Int64? {
        // Docker reads a bare number as bytes, so `512` would be refused as under 6m: the unit is required.
        if case .scalar(let scalar) = node, !scalar.string.isEmpty, scalar.string.allSatisfy(\.isNumber) {
            // Suggest `512m` only where that is a size reconcile takes (6m to 1024g).
            let fits = scalar.string.count <= 7 && (6...(1024 << 10)).contains(Int(scalar.string) ?? 0)
            let advice =
                fits
                ? "write \(scalar.string)m for \(scalar.string) MiB"
                : "write a size between 6m and 1024g, like 512m or 2g"
            reader.report(
                node, "resources.memory",
                "\"\(scalar.string)\" has no unit; \(advice) (units: k, m, g; Docker would read a bare number as bytes)"
            )
            return nil
        }
        guard case .scalar(let scalar) = node, let bytes = Quantities.bytes(scalar.string) else {
            reader.report(
                node, "resources.memory", "expected a size like \"512m\" or \"1g\", got \(NodeReader.describe(node))")
            return nil
        }
        guard Limits.memory.contains(bytes) else {
            reader.report(
                node, "resources.memory",
                "must be between 6m (Docker's minimum) and 1024g, got \"\(scalar.string)\"")
            return nil
        }
        return bytes
    }

    private static func dockerHealthcheck(_ node: Node, _ reader: inout NodeReader) -> DockerHealthcheck? {
        let path = "docker_healthcheck"
        guard
            let fields = reader.fields(
                node, path, known: ["test", "interval", "timeout", "retries", "start_period"])
        else { return nil }
        guard let testNode = fields["test"] else {
            reader.report(node, "\(path).test", "required, e.g. [CMD, curl, -f, http://localhost:8000/health]")
            return nil
        }
        guard let test = reader.stringList(testNode, "\(path).test") else { return nil }
        guard let kind = test.first, ["CMD", "CMD-SHELL", "NONE"].contains(kind), kind == "NONE" || test.count > 1
        else {
            reader.report(
                testNode, "\(path).test", "must start with CMD or CMD-SHELL followed by the command, or be [NONE]")
            return nil
        }
        var check = DockerHealthcheck(test: test)
        if let node = fields["interval"], let value = reader.duration(node, "\(path).interval", in: Limits.dockerCheck)
        {
            check.interval = value
        }
        if let node = fields["timeout"], let value = reader.duration(node, "\(path).timeout", in: Limits.dockerCheck) {
            check.timeout = value
        }
        if let node = fields["retries"], let value = reader.int(node, "\(path).retries", in: 0...1000) {
            check.retries = value
        }
        if let node = fields["start_period"],
            let value = reader.duration(node, "\(path).start_period", in: .zero...Limits.dockerCheck.upperBound)
        {
            check.startPeriod = value
        }
        return check
    }

    private static func health(_ node: Node, _ reader: inout NodeReader) -> HealthPolicy {
        var policy = HealthPolicy()
        let known = ["path", "expect_status", "expect_json", "startup", "interval", "attempts", "timeout"]
        guard let fields = reader.fields(node, "health", known: known) else { return policy }
        if let node = fields["path"], let value = urlPath(node, "health.path", &reader) { policy.path = value }
        if let node = fields["expect_status"], let value = reader.int(node, "health.expect_status", in: 100...599) {
            policy.expectStatus = value
        }
        if let node = fields["expect_json"], let entries = reader.stringMap(node, "health.expect_json") {
            policy.expectJSON = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        }
        if let node = fields["startup"], let value = reader.duration(node, "health.startup", in: Limits.startup) {
            policy.startup = value
        }
        if let node = fields["interval"], let value = reader.duration(node, "health.interval", in: Limits.interval) {
            policy.interval = value
        }
        if let node = fields["attempts"], let value = reader.int(node, "health.attempts", in: 1...1000) {
            policy.attempts = value
        }
        if let node = fields["timeout"], let value = reader.duration(node, "health.timeout", in: Limits.probeTimeout) {
            policy.timeout = value
        }
        if policy.budget > Limits.gateBudget {
            reader.report(
                node, "health",
                "the gate would wait up to \(Quantities.format(policy.budget)) (startup \(Quantities.format(policy.startup)) + "
                    + "\(policy.attempts) attempts × \(Quantities.format(policy.interval))); keep it at most "
                    + Quantities.format(Limits.gateBudget))
        }
        return policy
    }

    private static func smoke(_ node: Node, _ reader: inout NodeReader) -> [SmokeCheck] {
        guard case .sequence(let sequence) = node else {
            reader.report(
                node, "smoke", "expected a list of checks like [{path: /items}], got \(NodeReader.describe(node))")
            return []
        }
        guard sequence.count <= 100 else {
            reader.report(node, "smoke", "at most 100 checks, got \(sequence.count)")
            return []
        }
        var checks: [SmokeCheck] = []
        for (index, item) in sequence.enumerated() {
            let path = "smoke[\(index)]"
            guard let fields = reader.fields(item, path, known: ["path", "expect_status"]) else { continue }
            guard let pathNode = fields["path"] else {
                reader.report(item, "\(path).path", "required, e.g. path: /items")
                continue
            }
            guard let value = urlPath(pathNode, "\(path).path", &reader) else { continue }
            var check = SmokeCheck(path: value)
            if let node = fields["expect_status"], let status = reader.int(node, "\(path).expect_status", in: 100...599)
            {
                check.expectStatus = status
            }
            checks.append(check)
        }
        return checks
    }

    private static func performance(_ node: Node, _ reader: inout NodeReader) -> PerformanceCheck? {
        let known = ["path", "expect_status", "requests", "max_p95"]
        guard let fields = reader.fields(node, "performance", known: known) else { return nil }
        var check = PerformanceCheck()
        if let node = fields["path"], let value = urlPath(node, "performance.path", &reader) { check.path = value }
        if let node = fields["expect_status"], let value = reader.int(node, "performance.expect_status", in: 100...599)
        {
            check.expectStatus = value
        }
        if let node = fields["requests"], let value = reader.int(node, "performance.requests", in: 1...1000) {
            check.requests = value
        }
        if let node = fields["max_p95"], let value = reader.duration(node, "performance.max_p95", in: Limits.maxP95) {
            check.maxP95 = value
        }
        return check
    }

    private static func urlPath(_ node: Node, _ path: String, _ reader: inout NodeReader) -> String? {
        guard let value = reader.string(node, path) else { return nil }
        guard value.hasPrefix("/"), !value.contains(where: { $0.isWhitespace }) else {
            reader.report(node, path, "expected a URL path starting with /, got \"\(value)\"")
            return nil
        }
        return value
    }

    static func isVariableName(_ text: String) -> Bool {
        guard let first = text.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    static func isIPAddress(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            return parts.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) && Int(part).map { $0 <= 255 } == true
            }
        }
        return text.contains(":") && text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }
}

/// The range every number in an environment file must fall in. Each is far beyond any real use and
/// keeps every sum, product and conversion done with it far from overflow.
public enum Limits {
    public static let cpus: ClosedRange<Double> = 0.01...1024
    public static let memory: ClosedRange<Int64> = (6 << 20)...(1 << 40)
    public static let stopTimeout: ClosedRange<Duration> = .zero...(.seconds(3600))
    public static let dockerCheck: ClosedRange<Duration> = .milliseconds(1)...(.seconds(86400))
    public static let startup: ClosedRange<Duration> = .zero...(.seconds(3600))
    public static let interval: ClosedRange<Duration> = .milliseconds(10)...(.seconds(600))
    public static let probeTimeout: ClosedRange<Duration> = .milliseconds(10)...(.seconds(60))
    public static let maxP95: ClosedRange<Duration> = .milliseconds(1)...(.seconds(60))
    /// The longest health gate: `startup + attempts × interval`.
    public static let gateBudget: Duration = .seconds(3600)
    public static let drainTimeout: ClosedRange<Duration> = .zero...(.seconds(3600))
    /// `update.delay` and `update.monitor` of a Swarm service.
    public static let swarmDelay: ClosedRange<Duration> = .zero...(.seconds(3600))
    /// `--lock-timeout`.
    public static let lockTimeout: ClosedRange<Duration> = .zero...(.seconds(86400))
}

extension Array where Element: Hashable {
    func duplicates() -> [Element] {
        var seen = Set<Element>()
        return filter { !seen.insert($0).inserted }
    }
}
