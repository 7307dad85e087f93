import Foundation
import Glibc
import ReconcileCore
import ReconcileDocker
import ReconcileSystem

/// A sink for text: the terminal in the live program, a buffer in tests.
public protocol TextOutput: Sendable {
    func write(_ text: String)
}

/// Writes to a file descriptor (stdout or stderr). A write that fails (a closed pipe, a full
/// disk, a dropped ssh session) is dropped: output must never stop a deploy half-way.
public struct FileOutput: TextOutput {
    let descriptor: Int32

    public static let standardOutput = FileOutput(descriptor: STDOUT_FILENO)
    public static let standardError = FileOutput(descriptor: STDERR_FILENO)

    public func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}

/// Keeps what was written, for tests.
public final class CapturedOutput: TextOutput, Sendable {
    private let buffer = Locked("")

    public init() {}

    public func write(_ text: String) { buffer.withLock { $0 += text } }

    public var text: String { buffer.withLock { $0 } }
}

/// Everything a command touches outside itself, so tests can run commands in-process.
public struct CommandContext: Sendable {
    public var environment: [String: String]
    public var output: any TextOutput
    public var errors: any TextOutput
    /// Connects to an environment's engine (`engine:`; nil for the one the docker CLI would use),
    /// failing fast with an `EngineError` when it is down.
    public var connectTo: @Sendable (EngineTarget?) async throws -> any ContainerEngine
    public var now: @Sendable () -> Date
    /// Asks a person a question and returns the answer; nil when stdin is not a terminal, so
    /// nothing ever waits for an answer in cron or CI.
    public var ask: (@Sendable (String) -> String?)?
    /// A terminal to redraw progress lines on (stderr when it is one); nil otherwise.
    public var progress: (any TextOutput)?
    /// Finds host ports held by processes outside the engine; nil skips that check.
    public var hostPorts: (any HostPorts)?
    /// This process's identity for the engine-side lock, and the liveness of other holders.
    public var identity: any ProcessIdentity
    /// Reads environment files' history from git.
    public var revisions: any RevisionStore
    /// Whether stdout is a terminal (colour is for terminals only).
    public var outputIsTerminal = false

    public init(
        environment: [String: String], output: any TextOutput, errors: any TextOutput,
        connect: @escaping @Sendable (EngineTarget?) async throws -> any ContainerEngine,
        now: @escaping @Sendable () -> Date = { Date() },
        ask: (@Sendable (String) -> String?)? = nil, progress: (any TextOutput)? = nil,
        hostPorts: (any HostPorts)? = nil, identity: any ProcessIdentity = LiveProcessIdentity(),
        revisions: any RevisionStore = GitRevisionStore(), outputIsTerminal: Bool = false
    ) {
        self.outputIsTerminal = outputIsTerminal
        self.environment = environment
        self.output = output
        self.errors = errors
        self.connectTo = connect
        self.now = now
        self.ask = ask
        self.progress = progress
        self.hostPorts = hostPorts
        self.identity = identity
        self.revisions = revisions
    }

    /// The real process: its environment, stdout and stderr, and the Docker engine the docker CLI
    /// would use (DOCKER_HOST, else the docker context), with the docker CLI's registry logins.
    public static func live() -> CommandContext {
        // A closed pipe on stdout is an error of write(2) to ignore, not a signal that kills.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        var ask: (@Sendable (String) -> String?)?
        if isatty(STDIN_FILENO) == 1 && environment["RECONCILE_NO_PROMPT"] == nil {
            ask = { question in
                FileOutput.standardError.write(question)
                return readLine()
            }
        }
        let progress: (any TextOutput)? = isatty(STDERR_FILENO) == 1 ? FileOutput.standardError : nil
        return CommandContext(
            environment: environment, output: FileOutput.standardOutput, errors: FileOutput.standardError,
            connect: { target in
                // As the docker CLI: its config names the context (engine) and holds registry logins.
                let config = try DockerConfig.load(environment: environment)
                let endpoint = try DockerEndpoint.resolve(target, environment: environment, config: config)
                let credentials = DockerConfigCredentials(config: config, helper: CredentialHelperProcess())
                // ssh://: a local socket whose connections each run `ssh … docker system dial-stdio`.
                var tunnel: (any EngineTunnel)?
                if case .ssh = endpoint.transport {
                    let started = try SSHTunnel.start(endpoint, options: SSHTunnel.options(environment: environment))
                    StopSignals.atSignal { started.stop() }
                    tunnel = started
                }
                return try await DockerEngine.connect(endpoint, credentials: credentials, tunnel: tunnel)
            }, ask: ask, progress: progress, hostPorts: SocketHostPorts(),
            outputIsTerminal: isatty(STDOUT_FILENO) == 1)
    }

    func say(_ line: String) { output.write(line + "\n") }

    /// Colour on a terminal, as terraform and git do, unless `--no-color`, `NO_COLOR` (any
    /// non-empty value, no-color.org) or `TERM=dumb` say otherwise.
    func colour(_ option: ColorOption) -> Bool {
        outputIsTerminal && !option.noColor && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
    }
    func warn(_ line: String) { errors.write(line + "\n") }

    /// Connects to the engine the docker CLI would use.
    func connect() async throws -> any ContainerEngine { try await connectTo(nil) }

    /// Connects, runs `body` with the engine, and always releases the connection.
    func withEngine<T>(
        _ target: EngineTarget? = nil, _ body: (any ContainerEngine) async throws -> T
    ) async throws -> T {
        let engine = try await connectTo(target)
        do {
            let result = try await body(engine)
            await engine.shutdown()
            return result
        } catch {
            await engine.shutdown()
            throw error
        }
    }
}

/// Asks a yes/no question, only on a terminal.
enum Prompt {
    /// True for yes, false for anything else, nil when there is no terminal (or it closed).
    static func answer(_ question: String, context: CommandContext) -> Bool? {
        guard let ask = context.ask, let answer = ask(question) else { return nil }
        return ["y", "yes"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased())
    }
}
