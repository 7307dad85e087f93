import Foundation
import ReconcileCore

/// The docker CLI's configuration folder (`DOCKER_CONFIG`, else `~/.docker`): its `config.json`
/// (logins, credential helpers, the current context) and its contexts. reconcile reads it the way
/// the docker CLI does, so that `docker login` and `docker context use` take effect here too.
public struct DockerConfig: Sendable, Equatable {
    /// One `auths` entry: a `user:password` pair (`auth`, base64) and/or an identity token.
    public struct Login: Sendable, Equatable {
        public var username: String?
        public var password: String?
        public var identityToken: String?
    }

    /// The folder the configuration was read from.
    public var directory: String
    public var auths: [String: Login] = [:]
    public var credsStore: String?
    public var credHelpers: [String: String] = [:]
    public var currentContext: String?
    /// `auths` entries that cannot be read: an error for that registry's pulls only, as one bad
    /// entry must not stop `status` or a pull from another registry.
    public var invalidLogins: Set<String> = []

    /// The largest config.json read: a docker config with every login is a few kilobytes.
    static let maxSize = 16 << 20

    /// The folder the docker CLI would use for `environment`.
    public static func directory(environment: [String: String]) -> String {
        if let folder = environment["DOCKER_CONFIG"], !folder.isEmpty { return folder }
        return (environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()) + "/.docker"
    }

    /// Reads `config.json` in the folder `environment` names; an empty configuration when the file
    /// does not exist, as for the docker CLI.
    public static func load(environment: [String: String]) throws -> DockerConfig {
        let directory = directory(environment: environment)
        let path = directory + "/config.json"
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return DockerConfig(directory: directory) }
            throw DockerConfigError(path: path, reason: "cannot be read (\(String(cString: strerror(errno))))")
        }
        // A FIFO or a device would block or never end; the docker CLI writes a small regular file.
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw DockerConfigError(
                path: path, reason: "is not a regular file; point DOCKER_CONFIG at the docker CLI's folder")
        }
        guard info.st_size <= Self.maxSize else {
            throw DockerConfigError(
                path: path, reason: "is larger than \(Self.maxSize >> 20) MiB; this is not a docker config")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DockerConfigError(
                path: path, reason: "cannot be read as uid \(geteuid()); make it readable to this user")
        }
        return try parse(data, directory: directory)
    }

    /// Parses the text of `config.json`.
    public static func parse(_ data: Data, directory: String) throws -> DockerConfig {
        let path = directory + "/config.json"
        guard !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            return DockerConfig(directory: directory)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let root = object as? [String: Any] else {
            throw DockerConfigError(
                path: path, reason: "is not a JSON object; fix or remove it (docker login rewrites it)")
        }
        var config = DockerConfig(directory: directory)
        config.credsStore = (root["credsStore"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        config.currentContext = (root["currentContext"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        for (registry, helper) in root["credHelpers"] as? [String: Any] ?? [:] {
            if let helper = helper as? String, !helper.isEmpty { config.credHelpers[registry] = helper }
        }
        for (registry, value) in root["auths"] as? [String: Any] ?? [:] {
            guard let entry = value as? [String: Any] else { continue }
            var login = Login(
                username: entry["username"] as? String, password: entry["password"] as? String,
                identityToken: (entry["identitytoken"] as? String).flatMap { $0.isEmpty ? nil : $0 })
            if let auth = entry["auth"] as? String, !auth.isEmpty {
                guard let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
                    let colon = decoded.firstIndex(of: ":")
                else {
                    config.invalidLogins.insert(registry)
                    continue
                }
                login.username = String(decoded[..<colon])
                login.password = String(decoded[decoded.index(after: colon)...])
            }
            config.auths[registry] = login
        }
        return config
    }

    /// The host part of a config key, as the docker CLI compares them: `https://ghcr.io/v2/` → `ghcr.io`.
    static func hostname(_ key: String) -> String {
        var text = Substring(key)
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        return String(text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? text)
    }

    /// The `auths` entry for `registry`: its exact key, else a key with the same host.
    func login(for registry: String) -> Login? {
        if let exact = auths[registry] { return exact }
        let host = Self.hostname(registry)
        return auths.first { Self.hostname($0.key) == host }?.value
    }

    /// Whether the `auths` entry for `registry` is there but cannot be read.
    func loginIsInvalid(for registry: String) -> Bool {
        invalidLogins.contains(registry) || invalidLogins.contains { Self.hostname($0) == Self.hostname(registry) }
    }

    /// The credential helper for `registry` (`credHelpers`, else `credsStore`), nil for none.
    func helper(for registry: String) -> String? {
        credHelpers[registry] ?? credHelpers[Self.hostname(registry)] ?? credsStore
    }
}

/// The docker config could not be used. Names the file; never shows a secret.
public struct DockerConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public var description: String { "\(path) \(reason)" }
}

/// Runs a docker credential helper (`docker-credential-<name> get`) for one server.
public protocol CredentialHelper: Sendable {
    /// The user name and secret the helper keeps for `server`; nil when it has none.
    func get(helper: String, server: String) async throws -> (username: String, secret: String)?
}

/// Registry logins the way the docker CLI finds them: a credential helper named for the registry
/// (`credHelpers`) or for every registry (`credsStore`), else the `auths` entry in `config.json`.
public struct DockerConfigCredentials: RegistryCredentials {
    public let config: DockerConfig
    public let helper: any CredentialHelper

    public init(config: DockerConfig, helper: any CredentialHelper) {
        self.config = config
        self.helper = helper
    }

    public func credential(forRegistry registry: String) async throws -> RegistryCredential? {
        if let name = config.helper(for: registry) {
            let found: (username: String, secret: String)?
            do {
                found = try await helper.get(helper: name, server: registry)
            } catch {
                throw RegistryCredentialError(
                    registry: registry, reason: "the credential helper docker-credential-\(name) failed: \(error)")
            }
            guard let found, !found.secret.isEmpty else { return nil }
            // A helper keeps an identity token under the user name `<token>`.
            if found.username == "<token>" {
                return RegistryCredential(
                    username: "", password: "", identityToken: found.secret, serverAddress: registry)
            }
            return RegistryCredential(username: found.username, password: found.secret, serverAddress: registry)
        }
        if config.loginIsInvalid(for: registry) {
            throw RegistryCredentialError(
                registry: registry,
                reason:
                    "its entry in \(config.directory)/config.json is not a valid login; run `docker login \(registry)`")
        }
        guard let login = config.login(for: registry) else { return nil }
        if let token = login.identityToken {
            return RegistryCredential(
                username: login.username ?? "", password: "", identityToken: token, serverAddress: registry)
        }
        guard let username = login.username, !username.isEmpty else { return nil }
        return RegistryCredential(username: username, password: login.password ?? "", serverAddress: registry)
    }
}
