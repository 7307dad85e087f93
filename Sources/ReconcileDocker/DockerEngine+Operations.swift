import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ReconcileCore

extension DockerEngine {
    public func ping() async throws {
        let request = makeRequest(.GET, "/_ping", query: [], body: nil)
        let client = self.client
        let status: UInt
        do {
            let limit = pingLimit
            status = try await Deadline.run(limit) {
                let response = try await client.execute(
                    request, timeout: .milliseconds((limit - .seconds(1)).milliseconds))
                _ = try await response.body.collect(upTo: 1 << 16)
                return response.status.code
            }
        } catch {
            throw unreachable(error, operation: "ping")
        }
        guard status == 200 else {
            // dockerd answers plain HTTP on its TLS port with 400 ("Client sent an HTTP request to an
            // HTTPS server").
            if status == 400, case .tcp = endpoint.transport, endpoint.tls == nil {
                throw EngineError.unreachable(
                    endpoint: endpoint.description,
                    reason: "the engine there speaks TLS only: give engine.tls (ca, cert, key), or DOCKER_CERT_PATH "
                        + "with DOCKER_TLS_VERIFY=1")
            }
            throw EngineError.unreachable(endpoint: endpoint.description, reason: "ping answered \(status)")
        }
    }

    public func version() async throws -> EngineVersion {
        let response = try await send(.GET, "/version", operation: "report its version", timeout: .seconds(5))
        let version = try Self.decode(DockerDTO.Version.self, response, operation: "GET /version")
        return EngineVersion(
            engine: version.Version, apiVersion: version.ApiVersion, os: version.Os ?? "", arch: version.Arch ?? "")
    }

    public func containers() async throws -> [ContainerSnapshot] {
        let response = try await send(.GET, "/containers/json", query: [("all", "1")], operation: "list containers")
        return try Self.decode([DockerDTO.ContainerSummary].self, response, operation: "GET /containers/json")
            .map(\.snapshot)
    }

    public func inspectContainer(_ idOrName: String) async throws -> ContainerSnapshot? {
        let response = try await send(
            .GET, "/containers/\(Self.encode(idOrName))/json", operation: "inspect container \(idOrName)",
            accept: [200, 404])
        guard response.status == 200 else { return nil }
        return try Self.decode(DockerDTO.ContainerInspect.self, response, operation: "inspect container").snapshot
    }

    public func inspectImage(_ reference: String) async throws -> ImageSnapshot? {
        let response = try await send(
            .GET, "/images/\(Self.encode(reference))/json", operation: "inspect image \(reference)", accept: [200, 404])
        guard response.status == 200 else { return nil }
        return try Self.decode(DockerDTO.ImageInspect.self, response, operation: "inspect image").snapshot
    }

    public func pull(_ reference: String, progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        guard case .success(let parsed) = ImageReference.parse(reference) else {
            throw EngineError.pullFailed(reference: reference, message: "not a valid image reference")
        }
        var query = [("fromImage", parsed.repository)]
        if let digest = parsed.digest {
            query.append(("tag", digest))
        } else if let tag = parsed.tag {
            query.append(("tag", tag))
        }
        var request = makeRequest(.POST, "/images/create", query: query, body: nil)
        let login = try await credentials?.credential(forRegistry: parsed.registry)
        if let login { request.headers.add(name: "X-Registry-Auth", value: Self.registryAuth(login)) }
        let prepared = request
        let client = self.client
        let sent = login?.description
        do {
            try await Deadline.run(Self.pullLimit) {
                let response = try await client.execute(prepared, timeout: .minutes(30))
                guard response.status == .ok else {
                    let body = try await response.body.collect(upTo: 1 << 20)
                    throw EngineError.pullFailed(reference: reference, message: Self.message(in: body), login: sent)
                }
                // A pull can fail inside a 200 answer: read every line and check each.
                var lines = LineSplitter()
                for try await chunk in response.body {
                    for line in lines.feed(chunk) {
                        try Self.pullLine(line, reference: reference, login: sent, progress: progress)
                    }
                }
                if let last = lines.rest() {
                    try Self.pullLine(last, reference: reference, login: sent, progress: progress)
                }
            }
        } catch let error as EngineError {
            throw error
        } catch is DeadlineExceeded {
            throw EngineError.pullFailed(
                reference: reference, message: "the pull did not finish within \(Quantities.format(Self.pullLimit))")
        } catch {
            throw unreachable(error, operation: "pull \(reference)")
        }
    }

    /// The `X-Registry-Auth` header: the login as JSON in URL-safe base64, as the docker CLI sends it.
    static func registryAuth(_ login: RegistryCredential) -> String {
        var fields = ["serveraddress": login.serverAddress]
        if let token = login.identityToken {
            fields["identitytoken"] = token
        } else {
            fields["username"] = login.username
            fields["password"] = login.password
        }
        let json = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
        return json.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
    }

    /// The longest a pull may take, progress and all.
    static let pullLimit: Duration = .seconds(30 * 60)

    public func importImage(_ archive: [UInt8], as reference: String) async throws {
        guard case .success(let parsed) = ImageReference.parse(reference) else {
            throw EngineError.api(status: 400, message: "not a valid image reference", operation: "import \(reference)")
        }
        var request = makeRequest(
            .POST, "/images/create",
            query: [("fromSrc", "-"), ("repo", parsed.repository), ("tag", parsed.tag ?? "latest")],
            body: nil)
        request.headers.add(name: "Content-Type", value: "application/x-tar")
        request.body = .bytes(ByteBuffer(bytes: archive))
        let prepared = request
        let client = self.client
        let operation = "import \(reference)"
        let (status, body): (UInt, ByteBuffer)
        do {
            (status, body) = try await Deadline.run(.seconds(60)) {
                let response = try await client.execute(prepared, timeout: .seconds(60))
                return (response.status.code, try await response.body.collect(upTo: 1 << 20))
            }
        } catch {
            throw unreachable(error, operation: operation)
        }
        guard status == 200 else {
            throw EngineError.api(status: Int(status), message: Self.message(in: body), operation: operation)
        }
    }

    static func pullLine(_ line: Data, reference: String, login: String? = nil, progress: (PullProgress) -> Void)
        throws
    {
        guard let decoded = try? JSONDecoder().decode(DockerDTO.ProgressLine.self, from: line) else { return }
        if let error = decoded.errorDetail?.message ?? decoded.error {
            throw EngineError.pullFailed(reference: reference, message: error, login: login)
        }
        guard let status = decoded.status else { return }
        progress(
            PullProgress(
                id: decoded.id, status: status, current: decoded.progressDetail?.current,
                total: decoded.progressDetail?.total))
    }

    public func createContainer(_ request: ContainerCreation) async throws -> String {
        let body = try CreateContainerBody(request).json()
        let response = try await send(
            .POST, "/containers/create", query: [("name", request.name)], body: body,
            operation: "create container \(request.name)", accept: [201])
        return try Self.decode(DockerDTO.Created.self, response, operation: "create container").Id
    }

    public func startContainer(_ id: String) async throws {
        _ = try await send(.POST, "/containers/\(Self.encode(id))/start", operation: "start container \(id.prefix(12))")
    }

    public func unpauseContainer(_ id: String) async throws {
        _ = try await send(
            .POST, "/containers/\(Self.encode(id))/unpause", operation: "unpause container \(id.prefix(12))")
    }

    public func stopContainer(_ id: String, timeout: Duration) async throws {
        let seconds = timeout.wholeSecondsRoundedUp
        _ = try await send(
            .POST, "/containers/\(Self.encode(id))/stop", query: [("t", String(seconds))],
            operation: "stop container \(id.prefix(12))", timeout: timeout + .seconds(30))
    }

    public func renameContainer(_ id: String, to name: String) async throws {
        _ = try await send(
            .POST, "/containers/\(Self.encode(id))/rename", query: [("name", name)],
            operation: "rename container \(id.prefix(12)) to \(name)")
    }

    public func removeContainer(_ id: String, force: Bool) async throws {
        _ = try await send(
            .DELETE, "/containers/\(Self.encode(id))", query: [("force", force ? "1" : "0")],
            operation: "remove container \(id.prefix(12))", accept: [200, 204, 404])
    }

    public func network(_ name: String) async throws -> NetworkSnapshot? {
        let response = try await send(
            .GET, "/networks/\(Self.encode(name))", operation: "inspect network \(name)", accept: [200, 404])
        guard response.status == 200 else { return nil }
        let network = try Self.decode(DockerDTO.Network.self, response, operation: "inspect network")
        // The engine also finds a network by a prefix of its id: only the name counts here.
        guard network.Name == name else { return nil }
        return NetworkSnapshot(id: network.Id, name: network.Name, labels: network.Labels ?? [:])
    }

    public func createNetwork(_ name: String, labels: [String: String]) async throws {
        let body = try JSONSerialization.data(
            withJSONObject: ["Name": name, "Driver": "bridge", "CheckDuplicate": true, "Labels": labels],
            options: [.sortedKeys])
        _ = try await send(
            .POST, "/networks/create", body: body, operation: "create network \(name)", accept: [201])
    }

    public func removeNetwork(_ name: String) async throws {
        _ = try await send(
            .DELETE, "/networks/\(Self.encode(name))", operation: "remove network \(name)", accept: [200, 204, 404])
    }

    public func logs(_ id: String, tail: Int) async throws -> String {
        let response = try await send(
            .GET, "/containers/\(Self.encode(id))/logs",
            query: [("stdout", "1"), ("stderr", "1"), ("tail", String(tail))],
            operation: "read logs of \(id.prefix(12))")
        return Self.demultiplex(response.body)
    }

    /// Joins Docker's multiplexed log stream (8-byte frame headers) into text; a TTY stream is returned as is.
    static func demultiplex(_ buffer: ByteBuffer) -> String {
        var buffer = buffer
        var output = Data()
        while buffer.readableBytes >= 8, let header = buffer.getBytes(at: buffer.readerIndex, length: 8),
            [0, 1, 2].contains(header[0]), header[1] == 0, header[2] == 0, header[3] == 0
        {
            let size = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
            guard buffer.readableBytes >= 8 + size else { break }
            buffer.moveReaderIndex(forwardBy: 8)
            if let bytes = buffer.readBytes(length: size) { output.append(contentsOf: bytes) }
        }
        output.append(contentsOf: buffer.readableBytesView)
        return String(decoding: output, as: UTF8.self)
    }

    public func events() -> AsyncThrowingStream<EngineEvent, Error> {
        let filters =
            #"{"type":["container","service"],"event":["create","start","restart","die","stop","kill","pause","unpause","destroy","rename","update","remove","health_status"]}"#
        let request = makeRequest(.GET, "/events", query: [("filters", filters)], body: nil)
        let client = self.client
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let response = try await client.execute(request, timeout: .hours(24 * 365))
                    var lines = LineSplitter()
                    for try await chunk in response.body {
                        for line in lines.feed(chunk) {
                            if let event = Self.event(from: line) { continuation.yield(event) }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: Task.isCancelled ? nil : self.unreachable(error))
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func event(from line: Data) -> EngineEvent? {
        guard let decoded = try? JSONDecoder().decode(DockerDTO.Event.self, from: line),
            decoded.kind == "container" || decoded.kind == "service",
            let action = decoded.Action, let id = decoded.Actor?.ID
        else { return nil }
        let time =
            decoded.timeNano.map { Date(timeIntervalSince1970: Double($0) / 1e9) }
            ?? Date(timeIntervalSince1970: Double(decoded.time ?? 0))
        var event = EngineEvent(action: action, containerID: id, name: decoded.Actor?.Attributes?["name"], time: time)
        // Docker names the old name with its leading slash.
        event.oldName = decoded.Actor?.Attributes?["oldName"].map { String($0.trimmingPrefix("/")) }
        event.isService = decoded.kind == "service"
        return event
    }
}

/// Splits a stream of byte chunks into newline-terminated lines.
struct LineSplitter {
    private var pending = Data()

    mutating func feed(_ chunk: ByteBuffer) -> [Data] {
        pending.append(contentsOf: chunk.readableBytesView)
        var lines: [Data] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[pending.startIndex..<newline]
            if !line.isEmpty { lines.append(Data(line)) }
            pending = Data(pending[pending.index(after: newline)...])
        }
        return lines
    }

    mutating func rest() -> Data? {
        defer { pending = Data() }
        return pending.isEmpty ? nil : pending
    }
}
