import Foundation
import ReconcileCore
import Testing

private func parse(_ yaml: String, file: String = "staging.yml") -> Result<SpecParser.Parsed, ValidationFailure> {
    SpecParser.parse(Array(yaml.utf8), file: file, defaultEnvironment: "staging")
}

private func issues(_ yaml: String) -> [String] {
    switch parse(yaml) {
    case .success: return []
    case .failure(let failure): return failure.issues.map(\.description)
    }
}

private let minimal = """
    service: devops-fastapi
    image: acme/devops-fastapi:latest
    port: 8001

    """

struct SpecParserTests {
    @Test func minimalFileGetsTheSeedDefaults() throws {
        let spec = try parse(minimal).get().spec
        #expect(spec.environment == "staging")
        #expect(spec.containerName == "devops-fastapi-staging")
        #expect(spec.image == ImageReference(repository: "acme/devops-fastapi", tag: "latest"))
        #expect(spec.pull == .missing)
        #expect(spec.containerPort == 8000)
        #expect(spec.health.attempts == 10)
        #expect(spec.health.interval == .seconds(5))
        #expect(spec.health.startup == .seconds(15))
        #expect(spec.health.budget == .seconds(65))
        #expect(spec.backups == 3)
        #expect(spec.approval == .none)
        #expect(spec.restart == .unlessStopped)
    }

    @Test func everyKeyIsRead() throws {
        let yaml = """
            service: api
            environment: production
            image: registry:5000/team/api@sha256:\(String(repeating: "a", count: 64))
            pull: always
            port: 8000
            container_port: 9000
            bind: 127.0.0.1
            env: {LOG_LEVEL: info, WORKERS: 4, DEBUG: false}
            secrets: [API_TOKEN, DB_PASSWORD]
            secrets_file: /etc/reconcile/production.env
            command: [uvicorn, app:main, --port, "9000"]
            restart: "no"
            resources: {memory: 1g, cpus: 1.5}
            stop_timeout: 1m30s
            docker_healthcheck:
              test: [CMD, curl, -f, http://localhost:9000/health]
              interval: 30s
              timeout: 10s
              retries: 3
              start_period: 5s
            health:
              path: /healthz
              expect_status: 204
              expect_json: {status: healthy}
              startup: 0s
              interval: 500ms
              attempts: 15
              timeout: 1s
            smoke:
              - path: /items
              - {path: /, expect_status: 301}
            performance: {path: /health, requests: 50, max_p95: 250ms}
            backups: 5
            approval: required

            """
        let parsed = try parse(yaml).get()
        let spec = parsed.spec
        #expect(spec.environment == "production")
        #expect(spec.image.digest == "sha256:" + String(repeating: "a", count: 64))
        #expect(spec.image.repository == "registry:5000/team/api")
        #expect(spec.pull == .always)
        #expect(spec.bind == "127.0.0.1")
        #expect(spec.env == ["LOG_LEVEL": "info", "WORKERS": "4", "DEBUG": "false"])
        #expect(spec.secrets == ["API_TOKEN", "DB_PASSWORD"])
        #expect(spec.command == ["uvicorn", "app:main", "--port", "9000"])
        #expect(spec.restart == .no)
        #expect(spec.memory == 1 << 30)
        #expect(spec.cpus == 1.5)
        #expect(spec.stopTimeout == .seconds(90))
        #expect(spec.dockerHealthcheck?.retries == 3)
        #expect(spec.health.path == "/healthz")
        #expect(spec.health.expectJSON == ["status": "healthy"])
        #expect(spec.health.interval == .milliseconds(500))
        #expect(spec.smoke == [SmokeCheck(path: "/items"), SmokeCheck(path: "/", expectStatus: 301)])
        #expect(spec.performance?.maxP95 == .milliseconds(250))
        #expect(spec.backups == 5)
        #expect(spec.approval == .required)
        #expect(parsed.locations["port"] == SourceLocation(line: 5, column: 7))
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var expected: [String]
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(
            name: "unknown key with a suggestion", yaml: minimal + "helth: {path: /health}\n",
            expected: [#"staging.yml:4:1: helth: unknown key "helth"; did you mean "health"?"#]),
        BadInput(
            name: "unknown nested key", yaml: minimal + "health: {paht: /x}\n",
            expected: [#"staging.yml:4:10: health.paht: unknown key "paht"; did you mean "path"?"#]),
        BadInput(
            name: "unknown key without a close match", yaml: minimal + "zzzzzz: 1\n",
            expected: [
                #"staging.yml:4:1: zzzzzz: unknown key "zzzzzz"; expected one of: approval, backups, bind, command, container_port, docker_healthcheck, engine, env, environment, health, image, notify, performance, placement, platform, port, proxy, publish, pull, replicas, resources, restart, secrets, secrets_file, secrets_mode, service, smoke, stop_timeout, strategy, update"#
            ]),
        BadInput(
            name: "port as text", yaml: "service: a\nimage: b\nport: eighty\n",
            expected: [#"staging.yml:3:7: port: expected a whole number, got "eighty""#]),
        BadInput(
            name: "port out of range", yaml: "service: a\nimage: b\nport: 70000\n",
            expected: ["staging.yml:3:7: port: must be between 1 and 65535, got 70000"]),
        BadInput(
            name: "bad duration", yaml: minimal + "health:\n  interval: five\n",
            expected: [#"staging.yml:5:13: health.interval: expected a duration like "5s" or "500ms", got "five""#]),
        BadInput(
            name: "bare number is not a duration", yaml: minimal + "stop_timeout: 10\n",
            expected: [#"staging.yml:4:15: stop_timeout: expected a duration like "5s" or "500ms", got "10""#]),
        BadInput(
            name: "bad size", yaml: minimal + "resources: {memory: lots}\n",
            expected: [#"staging.yml:4:21: resources.memory: expected a size like "512m" or "1g", got "lots""#]),
        BadInput(
            name: "memory under Docker's minimum", yaml: minimal + "resources: {memory: 1m}\n",
            expected: [
                #"staging.yml:4:21: resources.memory: must be between 6m (Docker's minimum) and 1024g, got "1m""#
            ]),
        BadInput(
            name: "cpus must be positive", yaml: minimal + "resources: {cpus: 0}\n",
            expected: ["staging.yml:4:19: resources.cpus: must be between 0.01 and 1024, got 0"]),
        BadInput(
            name: "required keys missing, all reported", yaml: "environment: staging\n",
            expected: [
                "staging.yml:1:1: service: required; add `service: …` to the file",
                "staging.yml:1:1: image: required; add `image: …` to the file",
                "staging.yml:1:1: port: required; add `port: …` to the file",
            ]),
        BadInput(
            name: "several problems in one file", yaml: "service: a\nimage: b\nport: 0\npull: sometimes\nbackups: -1\n",
            expected: [
                "staging.yml:3:7: port: must be between 1 and 65535, got 0",
                #"staging.yml:4:7: pull: expected one of always | missing | never, got "sometimes""#,
                "staging.yml:5:10: backups: must be between 0 and 100, got -1",
            ]),
        BadInput(
            name: "enum with a suggestion", yaml: minimal + "restart: unless-stoped\n",
            expected: [
                #"staging.yml:4:10: restart: expected one of no | always | unless-stopped | on-failure, got "unless-stoped"; did you mean "unless-stopped"?"#
            ]),
        BadInput(
            name: "image with uppercase repository", yaml: "service: a\nimage: Acme/App:v1\nport: 1\n",
            expected: [
                #"staging.yml:2:8: image: "Acme/App:v1" is not an image reference: repository "Acme/App" must be lowercase letters, digits, . _ - and /"#
            ]),
        BadInput(
            name: "short digest", yaml: "service: a\nimage: a@sha256:abc\nport: 1\n",
            expected: [
                #"staging.yml:2:8: image: "a@sha256:abc" is not an image reference: digest must be sha256: followed by 64 lowercase hex digits"#
            ]),
        BadInput(
            name: "service name Docker would refuse", yaml: "service: my app\nimage: a\nport: 1\n",
            expected: [
                #"staging.yml:1:10: service: "my app" must start with a letter or digit and hold only letters, digits, _ . -"#
            ]),
        BadInput(
            name: "smoke item without a path", yaml: minimal + "smoke:\n  - path: /items\n  - expect_status: 200\n",
            expected: ["staging.yml:6:5: smoke[1].path: required, e.g. path: /items"]),
        BadInput(
            name: "health path without slash", yaml: minimal + "health: {path: health}\n",
            expected: [#"staging.yml:4:16: health.path: expected a URL path starting with /, got "health""#]),
        BadInput(
            name: "env variable also secret", yaml: minimal + "env: {TOKEN: x}\nsecrets: [TOKEN]\n",
            expected: ["staging.yml:4:7: env.TOKEN: is also listed in secrets; a variable is either plain or secret"]),
        BadInput(
            name: "secrets is a list", yaml: minimal + "secrets: TOKEN\n",
            expected: [#"staging.yml:4:10: secrets: expected a list like ["a", "b"], got "TOKEN""#]),
        BadInput(
            name: "env value that is a mapping", yaml: minimal + "env: {A: {b: c}}\n",
            expected: ["staging.yml:4:10: env.A: expected a text, number or boolean value, got a mapping"]),
        BadInput(
            name: "docker healthcheck test form", yaml: minimal + "docker_healthcheck: {test: [curl, x]}\n",
            expected: [
                "staging.yml:4:28: docker_healthcheck.test: must start with CMD or CMD-SHELL followed by the command, or be [NONE]"
            ]),
        BadInput(
            name: "bind must be an address", yaml: minimal + "bind: localhost\n",
            expected: [#"staging.yml:4:7: bind: expected an IP address like 0.0.0.0 or 127.0.0.1, got "localhost""#]),
        BadInput(
            name: "top level is a list", yaml: "- a\n- b\n",
            expected: ["staging.yml:1:1: expected a mapping of service, environment, image, …, got a list"]),
        BadInput(
            name: "empty file", yaml: "",
            expected: ["staging.yml:1:1: file is empty; an environment needs at least service, image and port"]),
        BadInput(
            name: "only comments", yaml: "# nothing here\n",
            expected: ["staging.yml:1:1: file is empty; an environment needs at least service, image and port"]),
        BadInput(
            name: "YAML syntax error", yaml: "service: a\nimage: [b\nport: 1\n",
            expected: ["staging.yml:3:5: invalid YAML: did not find expected ',' or ']'"]),
        BadInput(
            name: "absurd cpus", yaml: minimal + "resources: {cpus: 1e300}\n",
            expected: ["staging.yml:4:19: resources.cpus: must be between 0.01 and 1024, got 1e300"]),
        BadInput(
            name: "absurd duration", yaml: minimal + "stop_timeout: 99999999999999999999h\n",
            expected: [
                "staging.yml:4:15: stop_timeout: is longer than any duration reconcile accepts (at most 1h)"
            ]),
        BadInput(
            name: "duration beyond its range", yaml: minimal + "stop_timeout: 999h\n",
            expected: ["staging.yml:4:15: stop_timeout: must be at most 1h, got 999h"]),
        BadInput(
            name: "gate budget beyond an hour", yaml: minimal + "health: {startup: 30m, interval: 10m, attempts: 10}\n",
            expected: [
                "staging.yml:4:9: health: the gate would wait up to 2h10m (startup 30m + 10 attempts × 10m); keep it at most 1h"
            ]),
        BadInput(
            name: "an environment named like a role",
            yaml: "service: a\nenvironment: staging-candidate\nimage: b\nport: 1\n",
            expected: [
                "staging.yml:2:14: environment: the container name a-staging-candidate uses -candidate (new versions), which reconcile keeps for its own containers; choose another name"
            ]),
        BadInput(
            name: "duplicate key", yaml: "service: a\nimage: b\nport: 1\nport: 2\n",
            expected: [#"staging.yml:4:1: duplicate key "port" (first on line 3); each key may appear once"#]),
    ]

    @Test(arguments: badInputs)
    func badInputIsReportedExactly(_ input: BadInput) {
        #expect(issues(input.yaml) == input.expected)
    }

    @Test func engineNamesAHostAContextOrAHostWithTLSFilesBesideTheFile() throws {
        let host = try parse(minimal + "engine: tcp://10.0.0.5:2376\n").get().spec
        #expect(host.engine == EngineTarget(host: "tcp://10.0.0.5:2376"))
        let context = try parse(minimal + "engine: web-2\n").get().spec
        #expect(context.engine == EngineTarget(context: "web-2"))
        let tls = try parse(
            minimal + "engine: {host: tcp://web1:2376, tls: {ca: certs/ca.pem, cert: /etc/c.pem, key: k.pem}}\n",
            file: "environments/production.yml"
        ).get().spec
        #expect(
            tls.engine?.tls
                == EngineTarget.TLSPaths(
                    ca: "environments/certs/ca.pem", cert: "/etc/c.pem", key: "environments/k.pem"))
        #expect(tls.engine?.description == "tcp://web1:2376")

        // The gate reaches a remote engine's published port on that machine, unless bound to one address.
        var spec = tls
        spec.engineAddress = "10.0.0.5"
        #expect(spec.probeHost == "10.0.0.5")
        spec.bind = "127.0.0.1"
        #expect(spec.probeHost == "127.0.0.1")
    }

    @Test func aBadEngineIsNamedWithItsLine() {
        #expect(issues(minimal + "engine: http://web1:2376\n").first?.hasPrefix("staging.yml:4:") == true)
        #expect(
            issues(minimal + "engine: http://web1:2376\n").first?.contains("expected unix://, tcp:// or ssh://") == true
        )
        #expect(issues(minimal + "engine: tcp://web1\n").first?.contains("expected tcp://HOST:PORT") == true)
        #expect(issues(minimal + "engine: unix://docker.sock\n").first?.contains("must be absolute") == true)
        #expect(issues(minimal + "engine: \"no such/context\"\n").first?.contains("engine") == true)
        #expect(
            issues(minimal + "engine: {host: tcp://a:1, context: b}\n").first?.contains("both a host and a context")
                == true)
        #expect(issues(minimal + "engine: {tls: {ca: a, cert: b, key: c}}\n").joined().contains("needs host"))
        #expect(
            issues(minimal + "engine: {host: tcp://a:1, tls: {ca: a}}\n").joined().contains("needs ca, cert and key"))
        #expect(
            issues(minimal + "engine: {host: ssh://a, tls: {ca: a, cert: b, key: c}}\n").joined().contains(
                "is for a tcp:// engine"))
        #expect(issues(minimal + "engine: {hots: tcp://a:1}\n").joined().contains("did you mean \"host\""))
        // A password in an address is refused and never shown.
        let password = issues(minimal + "engine: tcp://user:hunter2@web1:2376\n").joined()
        #expect(password.contains("takes no user or password") && !password.contains("hunter2"), "\(password)")
        #expect(!issues(minimal + "engine: ftp://u:hunter2@web1\n").joined().contains("hunter2"))
    }

    @Test func swarmKeysAreReadWithPlatformSwarmOnly() throws {
        let spec = try parse(
            minimal + """
                platform: swarm
                replicas: 3
                update: {parallelism: 2, delay: 5s, order: start-first, monitor: 10s, failure_action: pause}
                placement: {constraints: ["node.role==worker"]}
                publish: {mode: host}

                """
        ).get().spec
        #expect(spec.platform == .swarm)
        #expect(spec.swarm.replicas == 3 && spec.swarm.parallelism == 2 && spec.swarm.delay == .seconds(5))
        #expect(spec.swarm.order == .startFirst && spec.swarm.monitor == .seconds(10))
        #expect(spec.swarm.failureAction == .pause && spec.swarm.publishMode == .host)
        #expect(spec.swarm.constraints == ["node.role==worker"])
        let config = RuntimeConfig(spec: spec, secretValues: [:])
        #expect(config.platform == "swarm" && config.replicas == 3 && config.publish == "host")
        // A container's fingerprint has none of it.
        #expect(RuntimeConfig(spec: try parse(minimal).get().spec, secretValues: [:]).platform == nil)

        #expect(issues(minimal + "replicas: 3\n").joined().contains("is only used with platform: swarm"))
        #expect(issues(minimal + "platform: swarm\nreplicas: 0\n").joined().contains("replicas"))
        #expect(issues(minimal + "platform: swarm\nupdate: {order: sideways}\n").joined().contains("update.order"))
        #expect(
            issues(minimal + "platform: swarm\nplacement: {constraints: [worker]}\n").joined().contains(
                "not a constraint"))
        #expect(
            issues(minimal + "platform: swarm\nstrategy: blue-green\n").joined().contains(
                "blue-green is for one container"))
        #expect(issues(minimal + "platform: kubernetes\n").joined().contains("platform"))
    }

    @Test func onSwarmSecretsAreSwarmSecretsNamedByTheirValuesFingerprint() throws {
        let spec = try parse(minimal + "platform: swarm\nsecrets: [API_TOKEN, DB_PASSWORD]\n").get().spec
        #expect(spec.secretsMode == .file)
        #expect(try parse(minimal + "platform: swarm\nsecrets_mode: env\n").get().spec.secretsMode == .env)
        #expect(try parse(minimal + "secrets: [API_TOKEN]\n").get().spec.secretsMode == .env)

        let key = [UInt8](repeating: 7, count: 32)
        let desired = DesiredEnvironment(spec: spec, secretValues: ["API_TOKEN": "s3cret"], fingerprintKey: key)
        let (versions, missing) = SwarmSecretVersion.of(desired)
        #expect(missing == ["DB_PASSWORD"])
        let version = try #require(versions.first)
        let fingerprint = RuntimeConfig.secretFingerprint(name: "API_TOKEN", value: "s3cret", key: key)
        #expect(version.name == "\(spec.containerName)-API_TOKEN-\(fingerprint.dropFirst(5))")
        #expect(version.labels[Labels.secretName] == "API_TOKEN" && version.labels[Labels.service] == spec.service)
        #expect(!version.name.contains("s3cret") && !version.labels.values.contains("s3cret"))
        // The task sees a path, never the value.
        let request = ContainerCreation(desired: desired, deployedAt: Date(timeIntervalSince1970: 0))
        #expect(request.environment.contains { $0 == ("API_TOKEN_FILE", "/run/secrets/API_TOKEN") })
        #expect(!request.environment.contains { $0.1 == "s3cret" })

        // A long name is cut to Swarm's 64 characters, the fingerprint kept whole.
        var long = spec
        long.service = String(repeating: "a", count: 60)
        let cut = try #require(
            SwarmSecretVersion.of(DesiredEnvironment(spec: long, secretValues: ["API_TOKEN": "x"], fingerprintKey: key))
                .versions
                .first)
        let cutFingerprint = RuntimeConfig.secretFingerprint(name: "API_TOKEN", value: "x", key: key).dropFirst(5)
        #expect(cut.name == String(repeating: "a", count: 51) + "-" + cutFingerprint)
    }

    @Test func binaryFileIsRefused() {
        let result = SpecParser.parse([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2], file: "reconcile", defaultEnvironment: "x")
        guard case .failure(let failure) = result else {
            Issue.record("binary content was accepted")
            return
        }
        #expect(failure.description == "reconcile:1:1: not a text file (NUL byte at offset 4); is this the right file?")
    }

    @Test func invalidUTF8IsRefused() {
        let result = SpecParser.parse([0x73, 0xff, 0xfe], file: "x.yml", defaultEnvironment: "x")
        guard case .failure(let failure) = result else {
            Issue.record("invalid UTF-8 was accepted")
            return
        }
        #expect(failure.description == "x.yml:1:1: not a text file (invalid UTF-8); environment files are UTF-8 YAML")
    }

    @Test func oversizedFileIsRefusedWithoutParsing() {
        let bytes = [UInt8](repeating: 0x20, count: SpecParser.maxBytes + 1)
        guard case .failure(let failure) = SpecParser.parse(bytes, file: "big.yml", defaultEnvironment: "x") else {
            Issue.record("oversized file was accepted")
            return
        }
        #expect(failure.issues.first?.message.contains("limited to 1048576 bytes") == true)
    }

    @Test func aliasBombIsRefusedQuickly() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            let previous = "*a\(level - 1)"
            yaml += "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]\n"
        }
        yaml += "service: a\nimage: b\nport: 1\n"
        let start = ContinuousClock.now
        let result = issues(yaml)
        // Seconds at most on a loaded 2-core machine with coverage; minutes before the fix.
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(
            result == [
                "staging.yml:5:10: the document has more than 20000 values once aliases are expanded; refusing to read it"
            ])
    }

    /// Issue 8, class 5: Yams hashes aliased keys while composing, before any count of ours could
    /// run; the event pass refuses them first. This 1.2 KB shape ran for over 30 s before.
    @Test func aliasesAsKeysAreRefusedQuickly() {
        var yaml = "a0: &a0 {x: 1, y: 2}\n"
        for level in 1...24 {
            yaml += "a\(level): &a\(level) {? *a\(level - 1) : 1, ? [*a\(level - 1)] : 2}\n"
        }
        yaml += "service: a\nimage: b\nport: 1\n"
        let start = ContinuousClock.now
        let result = issues(yaml)
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(
            result == [
                "staging.yml:2:12: the alias *a0 is used as a mapping key; reconcile does not accept aliases as keys (write the key out)"
            ])
    }

    /// Found by attacking: 5,000 aliases of one 100 KB value passed the node count and made a
    /// 500 MB diff.
    @Test func aliasesOfALongValueAreRefused() {
        var yaml = minimal + "env:\n  E0: &a \"" + String(repeating: "a", count: 100_000) + "\"\n"
        for index in 1...50 { yaml += "  E\(index): *a\n" }
        let start = ContinuousClock.now
        #expect(
            issues(yaml) == [
                "staging.yml:46:8: the document's text is more than 4 MiB once aliases are expanded; refusing to read it"
            ])
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func deepNestingAndASecondDocumentAreRefused() {
        let deep =
            "service: a\nimage: b\nport: 1\nenv: " + String(repeating: "[", count: 70)
            + String(repeating: "]", count: 70) + "\n"
        #expect(
            issues(deep) == [
                "staging.yml:4:69: collections are nested more than 64 levels deep here; refusing to read it"
            ])
        #expect(
            issues(minimal + "---\nservice: b\n") == [
                "staging.yml:4:1: a second YAML document starts here; an environment file holds exactly one (remove the `---` line and what follows, or move it to a file of its own)"
            ])
    }

    @Test func aByteOrderMarkIsNotContent() throws {
        let spec = try SpecParser.parse(
            [0xEF, 0xBB, 0xBF] + Array(minimal.utf8), file: "s.yml", defaultEnvironment: "x"
        )
        .get().spec
        #expect(spec.service == "devops-fastapi")
    }

    @Test func bareNoIsTheRestartPolicyNotFalse() throws {
        #expect(try parse(minimal + "restart: no\n").get().spec.restart == .no)
    }

    @Test func issueDescriptionWithoutField() {
        let issue = ValidationIssue(file: "f.yml", line: 2, column: 3, field: "", message: "broken")
        #expect(issue.description == "f.yml:2:3: broken")
    }
}

extension SpecParserTests {
    @Test func onSwarmTheHealthPolicyBecomesTheServicesHealthcheck() throws {
        let spec = try parse(
            minimal + "platform: swarm\ncontainer_port: 8080\nhealth: {path: \"/it's\", interval: 200ms, attempts: 4}\n"
        ).get().spec
        let check = try #require(spec.dockerHealthcheck)
        #expect(spec.healthcheckFromPolicy)
        #expect(check.test.first == "CMD-SHELL")
        #expect(check.test[1].contains(#"u='http://127.0.0.1:8080/it'\''s'"#), "\(check.test[1])")
        // At most once a second; as many failures as the gate allows; after the startup grace.
        #expect(check.interval == .seconds(1) && check.retries == 4 && check.startPeriod == spec.health.startup)
        // The plan names it by what it asks, not by its script.
        let config = RuntimeConfig(spec: spec, secretValues: [:])
        #expect(config.healthcheck?.first == "GET :8080/it's (from health)")
        // The file's own check wins; a container gets none it did not ask for.
        let own = try parse(minimal + "platform: swarm\ndocker_healthcheck: {test: [NONE]}\n").get().spec
        #expect(own.dockerHealthcheck?.test == ["NONE"] && !own.healthcheckFromPolicy)
        #expect(try parse(minimal).get().spec.dockerHealthcheck == nil)
    }
}

extension SpecParserTests {
    @Test func aSwarmServiceNameLongerThanSwarmAllowsIsRefused() {
        let long = String(repeating: "a", count: 60)
        let found = issues(
            minimal.replacingOccurrences(of: "service: ", with: "service: \(long)") + "platform: swarm\n")
        #expect(found.joined().contains("Swarm allows 63"), "\(found)")
    }
}
