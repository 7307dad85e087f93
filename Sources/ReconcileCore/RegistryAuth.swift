/// A login for an image registry, as the docker CLI keeps it: a user name and password, or an
/// identity token. Its description never shows the secret.
public struct RegistryCredential: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String
    /// An OAuth identity token (`identitytoken` in the docker config, or a helper's `<token>` user).
    public var identityToken: String?
    /// The registry as the engine knows it: `127.0.0.1:5000`, `ghcr.io`, `https://index.docker.io/v1/`.
    public var serverAddress: String

    public init(username: String, password: String, identityToken: String? = nil, serverAddress: String) {
        self.username = username
        self.password = password
        self.identityToken = identityToken
        self.serverAddress = serverAddress
    }

    public var description: String {
        identityToken != nil ? "an identity token for \(serverAddress)" : "user \(username) at \(serverAddress)"
    }
}

/// Finds the login for a registry the way the docker CLI does (its config file and credential
/// helpers). nil when the user has not logged in to it.
public protocol RegistryCredentials: Sendable {
    func credential(forRegistry registry: String) async throws -> RegistryCredential?
}

/// The credentials could not be read. Its description names the file or helper, never a secret.
public struct RegistryCredentialError: Error, Sendable, Equatable, CustomStringConvertible {
    public var registry: String
    public var reason: String

    public init(registry: String, reason: String) {
        self.registry = registry
        self.reason = reason
    }

    public var description: String { "cannot read the login for \(registry): \(reason)" }
}

extension ImageReference {
    /// Docker Hub's name in the docker config (`docker login` with no server writes this key).
    public static let dockerHubServer = "https://index.docker.io/v1/"

    /// The registry the image comes from, as the docker CLI names it: the first path component
    /// when it looks like a host (has a `.` or `:`, or is `localhost`), else Docker Hub.
    public var registry: String {
        guard let slash = repository.firstIndex(of: "/") else { return Self.dockerHubServer }
        let first = String(repository[..<slash])
        guard first.contains(".") || first.contains(":") || first == "localhost" else { return Self.dockerHubServer }
        return ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(first) ? Self.dockerHubServer : first
    }

    /// The registry for a person: `docker.io` rather than the config key.
    public var registryForPeople: String { registry == Self.dockerHubServer ? "docker.io" : registry }
}

/// What a pull failure means for the person running reconcile, from the engine's message.
public enum PullFailure: Sendable, Equatable {
    case notLoggedIn, refused, notFound, unreachable, other

    public static func classify(_ message: String) -> PullFailure {
        let text = message.lowercased()
        if text.contains("no basic auth credentials") { return .notLoggedIn }
        if text.contains("pull access denied") || text.contains("may require 'docker login'") {
            return .notLoggedIn
        }
        if text.contains("unauthorized") || text.contains("authentication required") || text.contains("denied")
            || text.contains("incorrect username or password")
        {
            return .refused
        }
        if text.contains("manifest unknown") || text.contains("not found") || text.contains("name unknown") {
            return .notFound
        }
        if text.contains("connection refused") || text.contains("no such host") || text.contains("i/o timeout")
            || text.contains("dial tcp") || text.contains("tls: ") || text.contains("server gave http response")
        {
            return .unreachable
        }
        return .other
    }

    /// What to do, one clause; `loggedIn` says whether reconcile sent a login.
    public func advice(registry: String, loggedIn: Bool) -> String {
        switch self {
        case .notLoggedIn:
            return loggedIn
                ? "the registry refused the login reconcile sent; run `docker login \(registry)` again"
                : "the registry wants a login and there is none for \(registry); run `docker login \(registry)` "
                    + "(reconcile reads the docker CLI's config: DOCKER_CONFIG or ~/.docker/config.json)"
        case .refused:
            return loggedIn
                ? "the registry refused the login for \(registry); run `docker login \(registry)` again, "
                    + "or check that this user may pull the image"
                : "the registry refused access; run `docker login \(registry)`"
        case .notFound:
            return "the registry has no such image or tag; check the image name and tag"
        case .unreachable:
            return "the registry \(registry) cannot be reached; check its address and this host's network"
        case .other:
            return "check the image name and tag, and registry access"
        }
    }
}
