import Crypto
import Foundation

/// The part of a spec that shapes the container itself, normalised (defaults resolved, maps sorted)
/// so that equal configurations encode to equal bytes. Its hash is the container's fingerprint.
///
/// Secret values are represented only by short fingerprints, keyed with a key kept on the host
/// (HMAC-SHA256, `hmac:<12 hex>`): they compare on the host and reveal nothing where the key is not,
/// such as a pull request comment. Without the key a value reads as unknown (`?`). The deploy gate
/// (health, smoke, performance) is not part of it: changing how a deploy is checked needs no new container.
public struct RuntimeConfig: Sendable, Equatable, Codable {
    public var image: String
    public var bind: String
    public var port: Int
    public var containerPort: Int
    public var env: [String: String]
    /// Secret name → fingerprint of its value (`"?"` when the value was not available).
    public var secrets: [String: String]
    /// `file` with `secrets_mode: file`; absent for the default, so that older fingerprints stay valid.
    public var secretsMode: String?
    public var command: [String]?
    public var restart: String
    public var memory: String?
    public var cpus: Double?
    public var stopTimeout: String
    public var healthcheck: [String]?
    /// `blue-green` when the container sits behind the environment's proxy (no host port of its
    /// own, on the proxy's network); absent for stop-first, so that older fingerprints stay valid.
    public var strategy: String?
    /// `swarm` for a Swarm service, with its replicas, update policy, placement and publish mode;
    /// all absent for a container, so that older fingerprints stay valid.
    public var platform: String?
    public var replicas: Int?
    public var update: String?
    public var placement: [String]?
    public var publish: String?

    /// - Parameters:
    ///   - key: the host's fingerprint key; without it, every secret reads as unknown.
    ///   - legacy: secrets whose fingerprint is computed the earlier (unkeyed) way, to compare with
    ///     containers created before keys existed; never shown.
    public init(spec: EnvironmentSpec, secretValues: [String: String], key: [UInt8]? = nil, legacy: Set<String> = []) {
        image = spec.image.description
        bind = spec.bind
        port = spec.port
        containerPort = spec.containerPort
        env = spec.env
        secrets = Dictionary(
            uniqueKeysWithValues: spec.secrets.map { name in
                (
                    name,
                    secretValues[name].flatMap { value in
                        legacy.contains(name)
                            ? Self.legacyFingerprint(name: name, value: value)
                            : key.map { Self.secretFingerprint(name: name, value: value, key: $0) }
                    } ?? Self.unknownSecret
                )
            })
        secretsMode = spec.secretsMode == .file ? SecretsMode.file.rawValue : nil
        command = spec.command
        restart = spec.restart.rawValue
        memory = spec.memory.map { Quantities.format(bytes: $0) }
        cpus = spec.cpus
        stopTimeout = Quantities.format(spec.stopTimeout)
        strategy = spec.strategy == .blueGreen ? DeployStrategy.blueGreen.rawValue : nil
        if spec.platform == .swarm {
            platform = Platform.swarm.rawValue
            replicas = spec.swarm.replicas
            update = spec.swarm.updateSummary
            placement = spec.swarm.constraints.isEmpty ? nil : spec.swarm.constraints
            publish = spec.swarm.publishMode.rawValue
        }
        healthcheck = spec.dockerHealthcheck.map { check in
            (spec.healthcheckFromPolicy ? ["GET :\(spec.containerPort)\(spec.health.path) (from health)"] : check.test)
                + [
                    "interval=\(Quantities.format(check.interval))", "timeout=\(Quantities.format(check.timeout))",
                    "retries=\(check.retries)", "start_period=\(Quantities.format(check.startPeriod))",
                ]
        }
    }

    public static let unknownSecret = "?"

    /// A short, stable fingerprint of one secret value under the host's key: shows that it
    /// changed without showing it, and cannot be guessed from offline without the key.
    public static func secretFingerprint(name: String, value: String, key: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("reconcile-secret\u{0}\(name)\u{0}\(value)".utf8), using: SymmetricKey(data: key))
        return "hmac:" + hex(mac).prefix(12)
    }

    /// The fingerprint of reconcile 0.1 (unkeyed sha256), kept only to compare with containers it made.
    static func legacyFingerprint(name: String, value: String) -> String {
        hex(SHA256.hash(data: Data("reconcile-secret\u{0}\(name)\u{0}\(value)".utf8))).prefix(12).description
    }

    /// True for a fingerprint made the unkeyed way (no scheme prefix).
    static func isLegacy(_ fingerprint: String) -> Bool {
        fingerprint != unknownSecret && !fingerprint.hasPrefix("hmac:")
    }

    /// The canonical JSON (sorted keys, no whitespace) stored in the `io.reconcile.config` label.
    public var canonicalJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings, numbers and arrays cannot fail.
        let data = (try? encoder.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// sha256 of the canonical JSON, with secret fingerprints left out so that `diff` can compare
    /// fingerprints on a machine that does not hold the secret values.
    public var fingerprint: String {
        var shape = self
        shape.secrets = secrets.mapValues { _ in "" }
        return hex(SHA256.hash(data: Data(shape.canonicalJSON.utf8)))
    }

    public static func decode(label: String) -> RuntimeConfig? {
        try? JSONDecoder().decode(RuntimeConfig.self, from: Data(label.utf8))
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
    private func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 { Self.hex(digest) }
}
