import Foundation
import ReconcileCLI
import ReconcileCore

/// A temporary folder of environment files, removed when the value is released.
public final class Workspace {
    public let root: URL

    public init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("reconcile-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("environments"), withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Writes `text` to `name` (relative to the root) and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    public var environments: String { root.appendingPathComponent("environments").path }
}

/// The outcome of one in-process run of `reconcile`.
public struct CommandRun: Sendable {
    public var code: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `reconcile <arguments>` in-process with captured output. `connect` supplies the engine;
/// by default it fails as an engine that is down would.
public func runReconcile(
    _ arguments: [String], environment: [String: String] = [:],
    now: Date = Date(timeIntervalSince1970: 1_700_000_600), answer: String? = nil, progress: CapturedOutput? = nil,
    hostPorts: (any HostPorts)? = nil, terminal: Bool = false,
    connect: @escaping @Sendable () async throws -> any ContainerEngine = {
        throw EngineError.unreachable(
            endpoint: "unix:///var/run/docker.sock", reason: "no socket at /var/run/docker.sock")
    }
) async -> CommandRun {
    await runReconcile(
        arguments, environment: environment, now: now, answer: answer, progress: progress, hostPorts: hostPorts,
        terminal: terminal, connectTo: { _ in try await connect() })
}

/// As `runReconcile(_:…connect:)`, with the engine chosen by each file's `engine:` (nil: the default).
public func runReconcile(
    _ arguments: [String], environment: [String: String] = [:],
    now: Date = Date(timeIntervalSince1970: 1_700_000_600), answer: String? = nil, progress: CapturedOutput? = nil,
    hostPorts: (any HostPorts)? = nil, terminal: Bool = false,
    connectTo: @escaping @Sendable (EngineTarget?) async throws -> any ContainerEngine
) async -> CommandRun {
    let output = CapturedOutput()
    let errors = CapturedOutput()
    // `answer` stands for a person at a terminal: the prompt goes to stderr, the answer comes back.
    var ask: (@Sendable (String) -> String?)?
    if let answer {
        ask = { question in
            errors.write(question + answer + "\n")
            return answer
        }
    }
    let context = CommandContext(
        environment: environment, output: output, errors: errors, connect: connectTo, now: { now },
        ask: ask,
        progress: progress, hostPorts: hostPorts, outputIsTerminal: terminal)
    let code = await Reconcile.run(arguments, context: context)
    return CommandRun(code: code, stdout: output.text, stderr: errors.text)
}
