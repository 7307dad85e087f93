import Foundation
import ReconcileCore

/// An in-memory container engine: containers and images in dictionaries, every call recorded,
/// failures injectable per operation. Behaves like dockerd where reconcile depends on it
/// (name clashes, 404s, port bindings only while running).
public actor FakeEngine: ContainerEngine {
    public private(set) var calls: [String] = []
    /// Every container creation asked for, in order.
    public private(set) var creations: [ContainerCreation] = []
    private var containersByID: [String: ContainerSnapshot] = [:]
    private var order: [String] = []
    private var images: [String: ImageSnapshot]
    private var failures: [String: EngineError] = [:]
    private var nextID = 1
    private var logsByID: [String: String] = [:]
    /// What containers of an image print when started, by image.
    private var startLogs: [String: String] = [:]
    /// Images whose containers crash as soon as they start: the exit code, and whether a restart
    /// policy brings them straight back (running again, restart count up, exit code gone).
    private var crashes: [String: (code: Int, restarts: Bool)] = [:]
    /// What a pull of a reference brings: a stand-in for the registry.
    private var registry: [String: ImageSnapshot] = [:]
    private var networksByName: [String: NetworkSnapshot] = [:]
    /// Open event streams, registered at once (not through the actor: an event emitted right
    /// after `events()` must not be lost), and whether streams stay open.
    private nonisolated let streams = Locked(
        (keep: false, listeners: [AsyncThrowingStream<EngineEvent, Error>.Continuation]()))

    public init(containers: [ContainerSnapshot] = [], images: [String: ImageSnapshot] = [:]) {
        self.images = images
        for container in containers {
            containersByID[container.id] = container
            order.append(container.id)
        }
    }

    /// Makes the named operation (`ping`, `containers`, `create`, `start`, …) throw `error` from now
    /// on; a whole call as recorded (`create app-staging-candidate`) fails only that call.
    public func fail(_ operation: String, with error: EngineError) { failures[operation] = error }

    public func addImage(_ reference: String, _ image: ImageSnapshot) { images[reference] = image }

    /// Makes containers of `image` crash with `code` when started; with `restarts`, the engine
    /// restarts them at once, as a restart policy does.
    public func crashOnStart(image: String, code: Int, restarts: Bool) { crashes[image] = (code, restarts) }

    /// Makes a later pull of `reference` bring `image` (a tag that moved in the registry).
    public func publish(_ reference: String, _ image: ImageSnapshot) { registry[reference] = image }

    public func container(named name: String) -> ContainerSnapshot? {
        containersByID.values.first { $0.name == name }
    }

    /// Calls that would change the engine (create, start, stop, rename, remove, pull).
    public var mutatingCalls: [String] {
        calls.filter { call in
            ["create", "start", "stop", "rename", "remove", "pull", "unpause", "import", "network"].contains {
                call.hasPrefix($0)
            }
        }
    }

    private func record(_ call: String, _ operation: String) throws {
        calls.append(call)
        if let error = failures[call] ?? failures[operation] { throw error }
    }

    public func ping() async throws { try record("ping", "ping") }

    public func version() async throws -> EngineVersion {
        try record("version", "version")
        return EngineVersion(engine: "fake", apiVersion: "1.41", os: "linux", arch: "amd64")
    }

    public func containers() async throws -> [ContainerSnapshot] {
        try record("containers", "containers")
        return order.compactMap { containersByID[$0] }.map { container in
            var listed = container
            if listed.state != .running { listed.ports = [] }
            return listed
        }
    }

    public func inspectContainer(_ idOrName: String) async throws -> ContainerSnapshot? {
        try record("inspect \(idOrName)", "inspect")
        return find(idOrName)
    }

    public func inspectImage(_ reference: String) async throws -> ImageSnapshot? {
        try record("inspectImage \(reference)", "inspectImage")
        return images[reference] ?? images.values.first { $0.id == reference }
    }

    public func pull(_ reference: String, progress: @escaping @Sendable (PullProgress) -> Void) async throws {
        try record("pull \(reference)", "pull")
        progress(PullProgress(id: "layer1", status: "Downloading", current: 512, total: 1024))
        progress(PullProgress(id: "layer1", status: "Pull complete"))
        images[reference] = registry[reference] ?? images[reference] ?? ImageSnapshot(id: "sha256:pulled-\(reference)")
    }

    public func createContainer(_ request: ContainerCreation) async throws -> String {
        try record("create \(request.name)", "create")
        creations.append(request)
        guard find(request.name) == nil else {
            throw EngineError.api(
                status: 409, message: "Conflict. The container name \"/\(request.name)\" is already in use",
                operation: "create container \(request.name)")
        }
        // Docker takes an image id as well as a reference (a pinned revision creates by id).
        guard let image = images[request.image] ?? images.values.first(where: { $0.id == request.image }) else {
            throw EngineError.api(
                status: 404, message: "No such image: \(request.image)", operation: "create container \(request.name)")
        }
        if let network = request.network, networksByName[network] == nil {
            throw EngineError.api(
                status: 404, message: "network \(network) not found", operation: "create container \(request.name)")
        }
        let id = String(format: "%064x", nextID)
        var container = ContainerSnapshot(
            id: id, name: request.name, image: request.image, imageID: image.id, state: .created,
            labels: request.labels,
            created: Date(), ports: request.port.map { [$0] } ?? [])
        if let network = request.network { container.networks = [network: "10.0.0.\(nextID % 250 + 2)"] }
        nextID += 1
        containersByID[id] = container
        order.append(id)
        return id
    }

    /// Makes containers of `image` print `text` when started (their logs).
    public func logOnStart(image: String, _ text: String) { startLogs[image] = text }

    public func startContainer(_ id: String) async throws {
        try record("start \(id.prefix(12))", "start")
        if let image = find(id)?.image, let text = startLogs[image] { logsByID[id] = text }
        let crash = find(id).flatMap { crashes[$0.image] }
        try update(id) {
            $0.state = .running
            $0.startedAt = Date()
            if let crash {
                $0.state = crash.restarts ? .running : .exited
                $0.exitCode = crash.restarts ? 0 : crash.code
                if crash.restarts { $0.restartCount += 1 }
            }
        }
    }

    public func unpauseContainer(_ id: String) async throws {
        try record("unpause \(id.prefix(12))", "unpause")
        try update(id) { $0.state = .running }
    }

    public func importImage(_ archive: [UInt8], as reference: String) async throws {
        try record("import \(reference)", "import")
        images[reference] = ImageSnapshot(id: "sha256:imported-\(reference)", repoTags: [reference])
    }

    public func stopContainer(_ id: String, timeout: Duration) async throws {
        try record("stop \(id.prefix(12))", "stop")
        try update(id) {
            $0.state = .exited
            $0.exitCode = 0
        }
    }

    public func renameContainer(_ id: String, to name: String) async throws {
        try record("rename \(id.prefix(12)) \(name)", "rename")
        if let holder = find(name), holder.id != find(id)?.id {
            throw EngineError.api(status: 409, message: "name \(name) is in use", operation: "rename container")
        }
        try update(id) { $0.name = name }
    }

    public func removeContainer(_ id: String, force: Bool) async throws {
        try record("remove \(id.prefix(12))", "remove")
        guard let container = find(id) else { return }
        containersByID[container.id] = nil
        order.removeAll { $0 == container.id }
    }

    public func network(_ name: String) async throws -> NetworkSnapshot? {
        try record("inspectNetwork \(name)", "inspectNetwork")
        return networksByName[name]
    }

    public func createNetwork(_ name: String, labels: [String: String]) async throws {
        try record("networkCreate \(name)", "networkCreate")
        guard networksByName[name] == nil else {
            throw EngineError.api(status: 409, message: "network with name \(name) already exists", operation: "create")
        }
        networksByName[name] = NetworkSnapshot(id: "net-\(name)", name: name, labels: labels)
    }

    public func removeNetwork(_ name: String) async throws {
        try record("networkRemove \(name)", "networkRemove")
        networksByName[name] = nil
    }

    public func logs(_ id: String, tail: Int) async throws -> String {
        try record("logs \(id.prefix(12))", "logs")
        return logsByID[id] ?? ""
    }

    public nonisolated func events() -> AsyncThrowingStream<EngineEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<EngineEvent, Error>.makeStream()
        let kept = streams.withLock { streams -> Bool in
            if streams.keep { streams.listeners.append(continuation) }
            return streams.keep
        }
        if !kept { continuation.finish() }
        return stream
    }

    /// Keeps event streams open from now on, as a running engine does.
    public nonisolated func keepEventsOpen() { streams.withLock { $0.keep = true } }

    /// Sends `event` to every open event stream.
    public nonisolated func emit(_ event: EngineEvent) {
        for listener in streams.withLock({ $0.listeners }) { listener.yield(event) }
    }

    /// Ends every open event stream, as an engine that goes away does.
    public nonisolated func endEvents() {
        let listeners = streams.withLock { streams in
            defer { streams.listeners = [] }
            return streams.listeners
        }
        for listener in listeners { listener.finish() }
    }

    public func shutdown() async { calls.append("shutdown") }

    private func find(_ idOrName: String) -> ContainerSnapshot? {
        containersByID[idOrName] ?? containersByID.values.first { $0.name == idOrName || $0.id.hasPrefix(idOrName) }
    }

    private func update(_ idOrName: String, _ change: (inout ContainerSnapshot) -> Void) throws {
        guard var container = find(idOrName) else {
            throw EngineError.api(status: 404, message: "No such container: \(idOrName)", operation: "update")
        }
        change(&container)
        containersByID[container.id] = container
    }
}
