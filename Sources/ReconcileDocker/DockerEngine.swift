import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ReconcileCore

/// The Docker Engine API over a unix socket or TCP (optionally TLS), with the API version
/// negotiated at connect time. Call `shutdown()` when done.
public final class DockerEngine: ContainerEngine {
    /// The oldest API reconcile speaks (Docker 20.10) and the newest it asks for.
    public static let minimumAPI = "1.41"
    public static let maximumAPI = "1.47"

    public let endpoint: DockerEndpoint
    public let apiVersion: String
    let client: HTTPClient
    /// Where pulls find their registry login (the docker CLI's config); nil sends none.
    let credentials: (any RegistryCredentials)?
    /// The local socket an ssh engine is reached through; nil for unix and tcp engines.
    let tunnel: (any EngineTunnel)?
    /// Where requests go: the endpoint itself, or the tunnel's socket.
    let route: DockerEndpoint

    /// Connects to the engine: fails within about a second when nothing answers, then negotiates
    /// the API version. Pulls send the login `credentials` has for the image's registry.
    /// An ssh engine (`ssh://…`) needs `tunnel`, which `stop()`s with the engine's `shutdown()`.
    public static func connect(
        _ endpoint: DockerEndpoint, credentials: (any RegistryCredentials)? = nil, tunnel: (any EngineTunnel)? = nil
    ) async throws -> DockerEngine {
        if case .ssh = endpoint.transport, tunnel == nil {
            throw EngineError.unreachable(endpoint: endpoint.description, reason: "an ssh engine needs its tunnel")
        }
        let client: HTTPClient
        do {
            client = try makeClient(endpoint)
        } catch {
            tunnel?.stop()
            throw error
        }
        do {
            let probe = DockerEngine(
                endpoint: endpoint, client: client, apiVersion: nil, credentials: nil, tunnel: tunnel)
            try await probe.ping()
            let version = try await probe.version()
            guard compare(version.apiVersion, minimumAPI) >= 0 else {
                throw EngineError.unsupportedAPI(version: version.apiVersion, minimum: minimumAPI)
            }
            let chosen = compare(version.apiVersion, maximumAPI) <= 0 ? version.apiVersion : maximumAPI
            return DockerEngine(
                endpoint: endpoint, client: client, apiVersion: chosen, credentials: credentials, tunnel: tunnel)
        } catch {
            // A stalled connection must not hold up the error either. The shutdown runs on its own:
            // a task cancelled here (watch stopping) must still shut the client down, or its
            // deinit traps.
            let closing = Task.detached { try? await client.shutdown() }
            _ = try? await Deadline.run(.seconds(1)) { await closing.value }
            var failure = error
            if let tunnel {
                // The connection ends before ssh has exited and said why: give it a moment to say it.
                for _ in 0..<30 where tunnel.lastFailure() == nil { try? await Task.sleep(for: .milliseconds(100)) }
                if let said = tunnel.lastFailure() {
                    failure = EngineError.unreachable(endpoint: endpoint.description, reason: Self.sshReason(said))
                }
                tunnel.stop()
            }
            throw failure
        }
    }

    private init(
        endpoint: DockerEndpoint, client: HTTPClient, apiVersion: String?, credentials: (any RegistryCredentials)?,
        tunnel: (any EngineTunnel)?
    ) {
        self.endpoint = endpoint
        self.client = client
        self.apiVersion = apiVersion ?? ""
        self.credentials = credentials
        self.tunnel = tunnel
        self.route = tunnel.map { DockerEndpoint(transport: .unix(path: $0.socketPath)) } ?? endpoint
    }

    public var remoteAddress: String? {
        switch endpoint.transport {
        case .unix: return nil
        case .tcp(let host, _), .ssh(_, let host, _): return host == "localhost" ? "127.0.0.1" : host
        }
    }

    /// Closes the connections (and an ssh engine's tunnel). The engine must not be used afterwards.
    public func shutdown() async {
        try? await client.shutdown()
        tunnel?.stop()
    }

    /// How long the first answer may take: an ssh engine first opens an ssh connection.
    var pingLimit: Duration { tunnel == nil ? .seconds(2) : .seconds(20) }

    private static func makeClient(_ endpoint: DockerEndpoint) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(1), read: nil)
        // watch reconciles environments side by side, each with its own requests, and holds an
        // event stream open: 8 connections (the default) made requests wait past the connect
        // timeout with 40 environments ("getConnectionFromPoolTimeout").
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.decompression = .disabled
        if let files = endpoint.tls {
            // A missing or unreadable file is named, not reported as BoringSSL's failedToLoadCertificate.
            for (role, path) in [("CA", files.ca), ("client certificate", files.cert), ("client key", files.key)] {
                guard let path else { continue }
                if !FileManager.default.isReadableFile(atPath: path) {
                    let why =
                        FileManager.default.fileExists(atPath: path) ? "not readable by this user" : "no such file"
                    throw EngineError.unreachable(
                        endpoint: endpoint.description, reason: "cannot read the TLS \(role) \(path): \(why)")
                }
            }
            do {
                var tls = TLSConfiguration.makeClientConfiguration()
                if let ca = files.ca { tls.trustRoots = .file(ca) }
                if !files.verify { tls.certificateVerification = .none }
                if let cert = files.cert, let key = files.key {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                }
                configuration.tlsConfiguration = tls
            } catch {
                let folder = ((files.cert ?? files.ca ?? "") as NSString).deletingLastPathComponent
                throw EngineError.unreachable(
                    endpoint: endpoint.description, reason: "cannot load TLS files from \(folder): \(error)")
            }
        }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    // MARK: - Requests

    struct Response {
        var status: Int
        var body: ByteBuffer

        var data: Data { Data(body.readableBytesView) }
    }

    /// Sends one request and collects the answer; statuses in `accept` are returned, others thrown.
    /// `timeout` bounds the whole exchange, body included.
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
        operation: String, accept: Set<Int> = [200, 201, 204, 304], timeout: Duration = .seconds(60),
        headers: [(String, String)] = []
    ) async throws -> Response {
        var building = makeRequest(method, path, query: query, body: body)
        for (name, value) in headers { building.headers.add(name: name, value: value) }
        let request = building
        let client = self.client
        let (status, collected): (Int, ByteBuffer)
        do {
            (status, collected) = try await Deadline.run(timeout) {
                let response = try await client.execute(request, timeout: .milliseconds(timeout.milliseconds))
                return (Int(response.status.code), try await response.body.collect(upTo: 64 << 20))
            }
        } catch {
            throw unreachable(error, operation: operation)
        }
        guard accept.contains(status) else {
            throw EngineError.api(status: status, message: Self.message(in: collected), operation: operation)
        }
        return Response(status: status, body: collected)
    }

    func makeRequest(_ method: HTTPMethod, _ path: String, query: [(String, String)], body: Data?) -> HTTPClientRequest
    {
        let prefix = apiVersion.isEmpty ? "" : "/v\(apiVersion)"
        var pathAndQuery = prefix + path
        if !query.isEmpty {
            pathAndQuery += "?" + query.map { "\($0.0)=\(Self.encode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: route.url(pathAndQuery))
        request.method = method
        request.headers.add(name: "Host", value: "docker")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    func unreachable(_ error: Error, operation: String? = nil) -> Error {
        if error is EngineError { return error }
        var reason = "\(error)"
        if let exceeded = error as? DeadlineExceeded {
            return EngineError.unreachable(
                endpoint: endpoint.description,
                reason:
                    "no complete answer \(operation.map { "to " + $0 + " " } ?? "")within \(Quantities.format(exceeded.limit))"
            )
        }
        if let said = tunnel?.lastFailure() {
            reason = Self.sshReason(said)
        } else if case .unix(let path) = endpoint.transport, !FileManager.default.fileExists(atPath: path) {
            reason = "no socket at \(path)"
        } else if let clientError = error as? HTTPClientError, clientError == .deadlineExceeded {
            reason = "no answer in time"
        } else if let clientError = error as? HTTPClientError, clientError == .connectTimeout {
            reason = "connection timed out"
        } else if reason.contains("connectionRefused") || reason.contains("Connection refused") {
            reason = "connection refused"
        } else if reason.contains("Permission denied") || reason.contains("EACCES") {
            reason = Self.permissionAdvice(endpoint)
        } else if let tls = Self.tlsReason(reason, files: endpoint.tls) {
            reason = tls
        }
        return EngineError.unreachable(endpoint: endpoint.description, reason: reason)
    }

    /// A TLS failure in words, not BoringSSL's (which names a build path): nil when `raw` is not one.
    static func tlsReason(_ raw: String, files: DockerEndpoint.TLSFiles? = nil) -> String? {
        guard raw.contains("handshakeFailed") || raw.contains("BoringSSL") || raw.contains("NIOSSL") else { return nil }
        if raw.contains("WRONG_VERSION_NUMBER") || raw.contains("HTTP_REQUEST") {
            return
                "TLS handshake failed: the engine there does not speak TLS (drop DOCKER_TLS_VERIFY, or use its TLS port)"
        }
        if raw.contains("CERTIFICATE_VERIFY_FAILED") || raw.contains("unableToValidateCertificate") {
            return
                "TLS handshake failed: the engine's certificate is not signed by the CA given (\(files?.ca ?? "ca.pem"))"
        }
        if raw.contains("failedToValidateHostname") || raw.contains("hostname") {
            return "TLS handshake failed: the engine's certificate is not for this host name"
        }
        if raw.contains("CERTIFICATE_REQUIRED") || raw.contains("HANDSHAKE_FAILURE") || raw.contains("BAD_CERTIFICATE")
            || raw.contains("UNKNOWN_CA")
        {
            let pair = [files?.cert ?? "cert.pem", files?.key ?? "key.pem"].joined(separator: ", ")
            return "TLS handshake failed: the engine refused this client's certificate (\(pair))"
        }
        return "TLS handshake failed"
    }

    /// ssh's own line says it best ("Permission denied (publickey)", "Could not resolve hostname").
    static func sshReason(_ said: String) -> String {
        said.hasPrefix("ssh") ? said : "ssh: \(said)"
    }

    /// What to do when the socket refuses this user: join the group that owns it.
    static func permissionAdvice(_ endpoint: DockerEndpoint) -> String {
        guard case .unix(let path) = endpoint.transport else { return "permission denied" }
        var info = stat()
        guard stat(path, &info) == 0 else { return "permission denied on \(path)" }
        let group = getgrgid(info.st_gid).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? "\(info.st_gid)"
        return "permission denied on \(path), which only root and the group \(group) may use; run reconcile as "
            + "root, or add this user to the group (`sudo usermod -aG \(group) $USER`, then log in again)"
    }

    static func message(in body: ByteBuffer) -> String {
        struct Message: Decodable { var message: String }
        let data = Data(body.readableBytesView)
        if let decoded = try? JSONDecoder().decode(Message.self, from: data) { return decoded.message }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "no details" : String(text.prefix(300))
    }

    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: Response, operation: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: response.data)
        } catch {
            throw EngineError.malformedResponse(operation: operation, detail: "\(error)")
        }
    }

    /// Compares dotted version numbers: negative, zero or positive.
    static func compare(_ lhs: String, _ rhs: String) -> Int {
        let left = lhs.split(separator: ".").map { Int($0) ?? 0 }
        let right = rhs.split(separator: ".").map { Int($0) ?? 0 }
        for index in 0..<max(left.count, right.count) {
            let (a, b) = (index < left.count ? left[index] : 0, index < right.count ? right[index] : 0)
            if a != b { return a < b ? -1 : 1 }
        }
        return 0
    }
}
