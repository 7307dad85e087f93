/// Which Docker engine an environment runs on (`engine:` in its file). Without one, the engine
/// the docker CLI would use (`DOCKER_HOST`, the current context, the local socket).
public struct EngineTarget: Sendable, Hashable, CustomStringConvertible {
    /// `unix:///path`, `tcp://host:2376` or `ssh://user@host`; nil when a context names it.
    public var host: String?
    /// A docker context (`~/.docker/contexts`), as `docker context create` made it.
    public var context: String?
    /// Client certificate files for a `tcp://` engine, absolute (the file gives them relative to
    /// itself). Nil: `DOCKER_CERT_PATH` when that is set, else plain TCP.
    public var tls: TLSPaths?

    public struct TLSPaths: Sendable, Hashable {
        public var ca: String
        public var cert: String
        public var key: String

        public init(ca: String, cert: String, key: String) {
            self.ca = ca
            self.cert = cert
            self.key = key
        }
    }

    public init(host: String? = nil, context: String? = nil, tls: TLSPaths? = nil) {
        self.host = host
        self.context = context
        self.tls = tls
    }

    /// How output names it: the address (never a password: the docker CLI's URLs carry none), or
    /// the context.
    public var description: String {
        if let host { return host }
        return "context \(context ?? "default")"
    }

    /// Why `text` cannot name an engine, or nil when it can (the scheme and the address's shape;
    /// the engine itself is only asked at apply time).
    public static func hostProblem(_ text: String) -> String? {
        let lower = text.lowercased()
        if lower.hasPrefix("unix://") {
            return text.dropFirst(7).hasPrefix("/")
                ? nil : "a unix:// socket path must be absolute (unix:///var/run/docker.sock)"
        }
        if lower.hasPrefix("tcp://") {
            let address = text.dropFirst(6).prefix { $0 != "/" }
            // Never echoed: it may hold a password.
            if address.contains("@") {
                return "a tcp:// engine takes no user or password (Docker authenticates TCP clients by TLS "
                    + "certificates: engine.tls)"
            }
            guard let colon = address.lastIndex(of: ":"), colon > address.startIndex,
                let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port)
            else { return "expected tcp://HOST:PORT (2376 is Docker's TLS port), got \"\(text)\"" }
            return nil
        }
        if lower.hasPrefix("ssh://") { return text.count > 6 ? nil : "expected ssh://[USER@]HOST[:PORT]" }
        if text.contains("@") { return "expected unix://, tcp:// or ssh://, or the name of a docker context" }
        return "expected unix://, tcp:// or ssh://, or the name of a docker context, got \"\(text)\""
    }

    /// Whether `text` can be a docker context's name (as `docker context create` accepts them).
    public static func isContextName(_ text: String) -> Bool {
        guard let first = text.first, first.isLetter || first.isNumber else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.+-".contains($0)) }
    }
}
