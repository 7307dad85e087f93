/// A failure talking to the container engine. The description is one line a person can act on.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The engine cannot be reached at all.
    case unreachable(endpoint: String, reason: String)
    /// The engine speaks an API older than reconcile supports.
    case unsupportedAPI(version: String, minimum: String)
    /// The engine answered with an error status.
    case api(status: Int, message: String, operation: String)
    /// An image is not on the host and could not be pulled. `login` names the login sent with
    /// the pull (`user alice at ghcr.io`), nil when there was none; never a secret.
    case pullFailed(reference: String, message: String, login: String? = nil)
    /// The engine's answer could not be understood.
    case malformedResponse(operation: String, detail: String)

    public var description: String {
        switch self {
        case .unreachable(let endpoint, let reason):
            // A socket this user may not open is not an engine that is down: the reason says what to do.
            if reason.hasPrefix("permission denied") {
                return "cannot reach the Docker engine at \(endpoint): \(reason)"
            }
            let check =
                endpoint.hasPrefix("ssh://")
                ? "check that `\(Self.sshCommand(endpoint))` works "
                    + "as this user, with the options in RECONCILE_SSH_OPTIONS if set (keys in ssh-agent or ~/.ssh/config)"
                : endpoint.hasSuffix("(engine: in the file)")
                    ? "is dockerd running there, and is the file's engine: right?"
                    : endpoint.contains("(docker context ")
                        ? "is dockerd running there, and is the docker context right (`docker context ls`)?"
                        : "is dockerd running, or is DOCKER_HOST set?"
            return "cannot reach the Docker engine at \(endpoint) (\(reason)); \(check)"
        case .unsupportedAPI(let version, let minimum):
            return "the Docker engine speaks API \(version), reconcile needs \(minimum) or newer; upgrade Docker"
        case .api(let status, let message, let operation):
            return "Docker engine refused to \(operation) (\(status)): \(message)\(Self.hint(message))"
        case .pullFailed(let reference, let message, let login):
            let registry =
                (try? ImageReference.parse(reference).get()).map(\.registryForPeople) ?? "the registry"
            let advice = PullFailure.classify(message).advice(registry: registry, loggedIn: login != nil)
            return "cannot pull \(reference): \(message); \(advice)"
        case .malformedResponse(let operation, let detail):
            return "unexpected answer from the Docker engine to \(operation): \(detail)"
        }
    }

    /// The command that tries an ssh engine by hand: `ssh -p 2222 deploy@web1 docker version`.
    static func sshCommand(_ endpoint: String) -> String {
        var address = String(endpoint.dropFirst("ssh://".count).split(separator: " ").first ?? "")
        var port = ""
        if let colon = address.lastIndex(of: ":"), !address.hasSuffix("]"),
            address[address.index(after: colon)...].allSatisfy(\.isNumber)
        {
            port = "-p \(address[address.index(after: colon)...]) "
            address = String(address[..<colon])
        }
        return "ssh -o BatchMode=yes \(port)\(address) docker version"
    }

    /// What to do about the engine errors people meet most.
    static func hint(_ message: String) -> String {
        if message.contains("address already in use") || message.contains("port is already allocated") {
            return "; the host port is taken: stop what holds it or choose another port"
        }
        return ""
    }
}
