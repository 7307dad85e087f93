import Crypto
import Foundation
import ReconcileCore

/// Where the Docker engine listens, found as the docker CLI finds it: `DOCKER_HOST` (`unix://` or
/// `tcp://`, with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`), else the docker context named by
/// `DOCKER_CONTEXT` or by `currentContext` in the docker config, else the local socket.
public struct DockerEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case unix(path: String)
        case tcp(host: String, port: Int)
        /// `ssh://[user@]host[:port]`: the docker CLI's way, `ssh … docker system dial-stdio` per connection.
        case ssh(user: String?, host: String, port: Int?)
    }

    /// Client certificate files for a TLS engine (`ca.pem`, `cert.pem`, `key.pem` in `DOCKER_CERT_PATH`
    /// or in a context's TLS folder). A context may name none and skip verification.
    public struct TLSFiles: Sendable, Equatable {
        public var ca: String?
        public var cert: String?
        public var key: String?
        /// False for a context created with `skip-tls-verify=true`.
        public var verify = true

        public init(ca: String?, cert: String?, key: String?, verify: Bool = true) {
            self.ca = ca
            self.cert = cert
            self.key = key
            self.verify = verify
        }
    }

    public var transport: Transport
    public var tls: TLSFiles?
    /// The docker context it came from; nil for `DOCKER_HOST` or the default.
    public var context: String?
    /// True when an environment file named it (`engine:`), for the advice in errors.
    public var fromFile = false

    public static let defaultSocket = "/var/run/docker.sock"

    public init(transport: Transport, tls: TLSFiles? = nil, context: String? = nil) {
        self.transport = transport
        self.tls = tls
        self.context = context
    }

    /// The engine the docker CLI would talk to with this environment and docker config:
    /// `DOCKER_HOST` wins, then `DOCKER_CONTEXT`, then the config's `currentContext`.
    public static func resolve(
        environment: [String: String], config: DockerConfig, namedBy: String? = nil
    ) throws -> DockerEndpoint {
        if let host = environment["DOCKER_HOST"], !host.isEmpty { return try from(environment: environment) }
        let chosen = environment["DOCKER_CONTEXT"].flatMap { $0.isEmpty ? nil : $0 }
        let name = chosen ?? config.currentContext ?? "default"
        guard name != "default" else { return try from(environment: environment) }
        let source = namedBy ?? (chosen != nil ? "DOCKER_CONTEXT" : "currentContext in \(config.directory)/config.json")
        let digest = SHA256.hash(data: Data(name.utf8)).map { String(format: "%02x", $0) }.joined()
        let meta = "\(config.directory)/contexts/meta/\(digest)/meta.json"
        var info = stat()
        if stat(meta, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            throw ContextError(context: name, reason: "has a meta.json that is not a regular file: \(meta)")
        }
        guard let data = FileManager.default.contents(atPath: meta) else {
            throw ContextError(
                context: name,
                reason: "does not exist (named by \(source)); `docker context ls` lists the contexts, "
                    + "`docker context use default` goes back to the local engine")
        }
        struct Meta: Decodable {
            struct Endpoint: Decodable {
                var host: String?
                var skipTLSVerify: Bool?
                enum CodingKeys: String, CodingKey {
                    case host = "Host"
                    case skipTLSVerify = "SkipTLSVerify"
                }
            }
            var endpoints: [String: Endpoint]?
            enum CodingKeys: String, CodingKey { case endpoints = "Endpoints" }
        }
        guard let decoded = try? JSONDecoder().decode(Meta.self, from: data),
            let docker = decoded.endpoints?["docker"], let host = docker.host, !host.isEmpty
        else {
            throw ContextError(context: name, reason: "has no docker endpoint in \(meta)")
        }
        var endpoint: DockerEndpoint
        do {
            endpoint = try from(environment: ["DOCKER_HOST": host])
        } catch let error as EndpointError {
            throw ContextError(
                context: name, reason: "points at \(redacted(host)), which is not usable: \(error.reason)")
        }
        endpoint.context = name
        if case .tcp = endpoint.transport {
            let folder = "\(config.directory)/contexts/tls/\(digest)/docker"
            func file(_ name: String) -> String? {
                FileManager.default.fileExists(atPath: "\(folder)/\(name)") ? "\(folder)/\(name)" : nil
            }
            let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"))
            let skip = docker.skipTLSVerify ?? false
            if ca != nil || cert != nil || skip {
                endpoint.tls = TLSFiles(ca: ca, cert: cert, key: key, verify: !skip)
            }
        }
        return endpoint
    }

    /// The engine an environment file names (`engine:`), or without one the engine the docker
    /// CLI would use. A host with TLS files uses them; a `tcp://` host without any uses
    /// `DOCKER_CERT_PATH` when that is set, as the docker CLI does with `--tlsverify`.
    public static func resolve(
        _ target: EngineTarget?, environment: [String: String], config: DockerConfig
    ) throws -> DockerEndpoint {
        guard let target else { return try resolve(environment: environment, config: config) }
        var chosen = environment
        chosen["DOCKER_HOST"] = nil
        if let context = target.context {
            chosen["DOCKER_CONTEXT"] = context
            var endpoint = try resolve(environment: chosen, config: config, namedBy: "engine: in the file")
            endpoint.fromFile = true
            return endpoint
        }
        chosen["DOCKER_HOST"] = target.host
        let certPath = environment["DOCKER_CERT_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        chosen["DOCKER_TLS_VERIFY"] = certPath != nil ? "1" : nil
        var endpoint: DockerEndpoint
        do {
            endpoint = try from(environment: chosen)
        } catch var error as EndpointError {
            error.source = "engine: in the file,"
            throw error
        }
        endpoint.fromFile = true
        if let tls = target.tls, case .tcp = endpoint.transport {
            endpoint.tls = TLSFiles(ca: tls.ca, cert: tls.cert, key: tls.key)
        }
        return endpoint
    }

    /// Reads the endpoint from an environment such as `ProcessInfo.processInfo.environment`.
    public static func from(environment: [String: String]) throws -> DockerEndpoint {
        var host = environment["DOCKER_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "unix://\(defaultSocket)"
        // The scheme is case-insensitive, as in any URL: SSH://host is ssh://host.
        if let separator = host.range(of: "://") {
            host = host[..<separator.lowerBound].lowercased() + host[separator.lowerBound...]
        }
        if host.hasPrefix("unix://") {
            let path = String(host.dropFirst("unix://".count))
            guard path.hasPrefix("/") else {
                throw EndpointError(host: host, reason: "the socket path must be absolute")
            }
            return DockerEndpoint(transport: .unix(path: path))
        }
        if host.hasPrefix("ssh://") { return DockerEndpoint(transport: try ssh(host)) }
        guard host.hasPrefix("tcp://") else {
            throw EndpointError(host: host, reason: "only unix:// and tcp:// are supported")
        }
        let address = host.dropFirst("tcp://".count).split(separator: "/").first.map(String.init) ?? ""
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port), colon > address.startIndex
        else {
            throw EndpointError(host: host, reason: "expected tcp://HOST:PORT")
        }
        let bracketed = String(address[..<colon])
        // `[::1]` is an IPv6 address; a lone bracket is a typo, not a host.
        guard bracketed.hasPrefix("[") == bracketed.hasSuffix("]"),
            bracketed.filter({ $0 == "[" }).count <= 1, bracketed.filter({ $0 == "]" }).count <= 1
        else {
            throw EndpointError(host: host, reason: "expected tcp://HOST:PORT (an IPv6 address as [::1])")
        }
        let name = bracketed.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var endpoint = DockerEndpoint(transport: .tcp(host: name, port: port))
        if let verify = environment["DOCKER_TLS_VERIFY"], !verify.isEmpty, verify != "0" {
            let directory =
                environment["DOCKER_CERT_PATH"].flatMap { $0.isEmpty ? nil : $0 }
                ?? ((environment["HOME"] ?? "") + "/.docker")
            endpoint.tls = TLSFiles(
                ca: "\(directory)/ca.pem", cert: "\(directory)/cert.pem", key: "\(directory)/key.pem")
        }
        return endpoint
    }

    /// Parses `ssh://[user@]host[:port]` as the docker CLI does (no path, no password).
    static func ssh(_ text: String) throws -> Transport {
        let shown = redacted(text)
        var address = text.dropFirst("ssh://".count)
        if address.hasSuffix("/") { address = address.dropLast() }
        guard !address.isEmpty, !address.contains("/") else {
            throw EndpointError(host: shown, reason: "expected ssh://[USER@]HOST[:PORT] with no path")
        }
        var user: String?
        if let at = address.lastIndex(of: "@") {
            let name = address[..<at]
            guard !name.contains(":") else {
                throw EndpointError(
                    host: shown, reason: "a password in the URL is not supported; use a key (ssh-agent) instead")
            }
            // A user name as ssh takes it: no spaces, no control characters, not an option.
            guard !name.isEmpty, !name.hasPrefix("-"),
                name.allSatisfy({ ($0.isLetter || $0.isNumber || "._-".contains($0)) && $0.isASCII })
            else {
                throw EndpointError(host: shown, reason: "the user name before @ must be letters, digits, . _ or -")
            }
            user = String(name)
            address = address[address.index(after: at)...]
        }
        var port: Int?
        if address.hasPrefix("[") {
            // [IPv6]:port
            guard let close = address.firstIndex(of: "]") else {
                throw EndpointError(host: shown, reason: "an IPv6 address needs its closing bracket: [::1]")
            }
            let rest = address[address.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Self.port(rest.dropFirst()) else {
                    throw EndpointError(host: shown, reason: "the port must be a number from 1 to 65535")
                }
                port = number
            }
            address = address[address.index(after: address.startIndex)..<close]
        } else if address.filter({ $0 == ":" }).count > 1 {
            throw EndpointError(host: shown, reason: "write an IPv6 address in brackets: ssh://user@[::1]:22")
        } else if let colon = address.firstIndex(of: ":") {
            guard let number = Self.port(address[address.index(after: colon)...]) else {
                throw EndpointError(host: shown, reason: "the port must be a number from 1 to 65535")
            }
            port = number
            address = address[..<colon]
        }
        let host = String(address)
        // ssh would read a leading "-" as an option: refuse it rather than pass it on.
        guard !host.isEmpty, !host.hasPrefix("-"),
            host.allSatisfy({ ($0.isLetter || $0.isNumber || ".-_:".contains($0)) && $0.isASCII })
        else {
            throw EndpointError(host: shown, reason: "\"\(host)\" is not a host name")
        }
        return .ssh(user: user, host: host, port: port)
    }

    /// A port as digits only (`+22` and `22:22` are not ports).
    static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(text),
            (1...65535).contains(number)
        else { return nil }
        return number
    }

    /// A URL as it may be shown: a password in it replaced by `***`, control characters escaped.
    static func redacted(_ url: String) -> String {
        var text = url
        if let scheme = text.range(of: "://") {
            let authority = text[scheme.upperBound...].prefix { $0 != "/" }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        return Printable.escapingControls(text)
    }

    public var description: String {
        let context = self.context.map { " (docker context \($0))" } ?? ""
        return address + context + (fromFile ? " (engine: in the file)" : "")
    }

    /// The address alone: `unix:///var/run/docker.sock`, `tcp://host:2376`.
    public var address: String {
        switch transport {
        case .unix(let path): return "unix://\(path)"
        case .tcp(let host, let port): return "tcp://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .ssh(let user, let host, let port):
            let name = host.contains(":") ? "[\(host)]" : host
            return "ssh://\(user.map { "\($0)@" } ?? "")\(name)\(port.map { ":\($0)" } ?? "")"
        }
    }

    /// The URL of an API path on this endpoint.
    func url(_ pathAndQuery: String) -> String {
        switch transport {
        case .unix(let path):
            let host = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? path
            return "http+unix://\(host)\(pathAndQuery)"
        case .tcp(let host, let port):
            let name = host.contains(":") ? "[\(host)]" : host
            return "\(tls == nil ? "http" : "https")://\(name):\(port)\(pathAndQuery)"
        case .ssh:
            // Never asked: an ssh engine is reached through its tunnel's local socket.
            return "http+unix://%2Fnonexistent\(pathAndQuery)"
        }
    }
}

/// `DOCKER_HOST` names something reconcile cannot talk to.
public struct EndpointError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var reason: String
    /// Where the address came from, as people set it: `DOCKER_HOST`, or `engine:` in a file.
    public var source = "DOCKER_HOST"

    public init(host: String, reason: String) {
        self.host = host
        self.reason = reason
    }

    /// A password in the URL never shows: it would reach cron mail and CI logs.
    public var description: String {
        source == "DOCKER_HOST"
            ? "DOCKER_HOST=\(DockerEndpoint.redacted(host)) is not usable: \(reason)"
            : "\(source) \(DockerEndpoint.redacted(host)) is not usable: \(reason)"
    }
}

/// A local socket that leads to a remote engine (an ssh process per connection). The engine's
/// requests go to `socketPath`; `stop()` ends it and every process it started.
public protocol EngineTunnel: Sendable {
    var socketPath: String { get }
    /// What the last connection's process said when it failed (ssh's own line), for the error.
    func lastFailure() -> String?
    func stop()
}

/// The docker context to use cannot be used; says which and what to do.
public struct ContextError: Error, Sendable, Equatable, CustomStringConvertible {
    public var context: String
    public var reason: String

    /// Control characters in a context's name (it may come from a file) are shown escaped, so that
    /// a name cannot clear the screen or colour what follows.
    public var description: String {
        "docker context \"\(Printable.escapingControls(context))\" \(reason)"
    }
}
