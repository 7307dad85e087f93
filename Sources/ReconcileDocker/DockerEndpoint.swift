import Foundation
import ReconcileCore

/// Where the Docker engine listens, from `DOCKER_HOST` (`unix://` or `tcp://`), `DOCKER_TLS_VERIFY`
/// and `DOCKER_CERT_PATH`; the local socket when none is set.
public struct DockerEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case unix(path: String)
        case tcp(host: String, port: Int)
    }

    /// Client certificate files for a TLS engine (`ca.pem`, `cert.pem`, `key.pem` in `DOCKER_CERT_PATH`).
    public struct TLSFiles: Sendable, Equatable {
        public var ca: String
        public var cert: String
        public var key: String
    }

    public var transport: Transport
    public var tls: TLSFiles?

    public static let defaultSocket = "/var/run/docker.sock"

    public init(transport: Transport, tls: TLSFiles? = nil) {
        self.transport = transport
        self.tls = tls
    }

    /// Reads the endpoint from an environment such as `ProcessInfo.processInfo.environment`.
    public static func from(environment: [String: String]) throws -> DockerEndpoint {
        let host = environment["DOCKER_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "unix://\(defaultSocket)"
        if host.hasPrefix("unix://") {
            let path = String(host.dropFirst("unix://".count))
            guard path.hasPrefix("/") else {
                throw EndpointError(host: host, reason: "the socket path must be absolute")
            }
            return DockerEndpoint(transport: .unix(path: path))
        }
        guard host.hasPrefix("tcp://") else {
            throw EndpointError(host: host, reason: "only unix:// and tcp:// are supported")
        }
        let address = host.dropFirst("tcp://".count).split(separator: "/").first.map(String.init) ?? ""
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port), colon > address.startIndex
        else {
            throw EndpointError(host: host, reason: "expected tcp://HOST:PORT")
        }
        let name = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
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

    public var description: String {
        switch transport {
        case .unix(let path): return "unix://\(path)"
        case .tcp(let host, let port): return "tcp://\(host.contains(":") ? "[\(host)]" : host):\(port)"
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
        }
    }
}

/// `DOCKER_HOST` names something reconcile cannot talk to.
public struct EndpointError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var reason: String

    public var description: String { "DOCKER_HOST=\(host) is not usable: \(reason)" }
}
