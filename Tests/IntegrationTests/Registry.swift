import Foundation
import ReconcileTestSupport
import Testing

/// A private image registry for one test: Debian's `docker-registry` on a kernel-chosen loopback
/// port with its own storage, stopped and deleted afterwards; with `login`, it wants that user and
/// password (htpasswd, bcrypt). dockerd trusts 127.0.0.0/8 over plain HTTP, so pulls from it are
/// real pulls.
final class Registry {
    let process: ServerProcess
    let port: Int
    let directory: String
    let runID: String
    /// The docker CLI config folder `publish` pushes with (a `docker login` into it, for `login`).
    let pushConfig: String?
    private var stopped = false

    static let binary = "/usr/bin/docker-registry"
    static let docker = "/usr/bin/docker"

    var address: String { "127.0.0.1:\(port)" }

    private init(process: ServerProcess, port: Int, directory: String, runID: String, pushConfig: String?) {
        self.process = process
        self.port = port
        self.directory = directory
        self.runID = runID
        self.pushConfig = pushConfig
    }

    static func start(port: Int, runID: String, login: (user: String, password: String)? = nil) async throws
        -> Registry
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reconcile-registry-\(runID)")
            .path
        try FileManager.default.createDirectory(atPath: "\(directory)/data", withIntermediateDirectories: true)
        var auth = ""
        if let login {
            let made = await Spawn.finished(
                try Spawn.start("/usr/bin/htpasswd", ["-Bbc", "\(directory)/htpasswd", login.user, login.password]))
            guard made == 0 else { throw FixtureError("htpasswd failed (\(made)); `make test` installs apache2-utils") }
            auth = "auth: {htpasswd: {realm: reconcile-test, path: \(directory)/htpasswd}}"
        }
        let config = """
            version: 0.1
            log: {level: warn}
            storage: {filesystem: {rootdirectory: \(directory)/data}}
            http: {addr: "127.0.0.1:\(port)"}
            \(auth)
            """
        try config.write(toFile: "\(directory)/config.yml", atomically: true, encoding: .utf8)
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw FixtureError("\(binary) is missing: `make test` installs Debian's docker-registry")
        }
        let process = ServerProcess(
            pid: try Spawn.start(binary, ["serve", "\(directory)/config.yml"], output: "\(directory)/log"),
            folder: directory)
        let pushConfig = login.map { _ in "\(directory)/push-config" }
        let registry = Registry(
            process: process, port: port, directory: directory, runID: runID, pushConfig: pushConfig)
        // Listening is enough (an HTTP check would meet the login challenge, which URLSession on
        // Linux waits on for ever).
        do {
            try await process.waitForPort(port)
            if let login, let pushConfig {
                try Self.run([
                    "--config", pushConfig, "login", registry.address, "-u", login.user, "-p", login.password,
                ])
            }
        } catch {
            registry.stop()
            throw FixtureError("docker-registry did not answer on port \(port): \(error)")
        }
        return registry
    }

    /// `127.0.0.1:<port>/<run id>/app:<tag>`
    func reference(_ tag: String) -> String { "127.0.0.1:\(port)/\(runID)/app:\(tag)" }

    /// Pushes an image of the test's own under `tag`, then removes the local tag so only a pull
    /// brings it back. The image is `local` plus one layer (a file naming the run), so the pull
    /// downloads that layer rather than finding every layer on the host, and pushing never
    /// touches the shared fixture image: a push records a repo digest on the image it pushes,
    /// which `reconcile status` would then report for every other test running that fixture.
    func publish(_ local: String, as tag: String) throws {
        let target = reference(tag)
        let name = "\(runID)-commit-\(tag)"
        try Self.run(["create", "--name", name, "--label", "io.reconcile.test=\(runID)", local])
        defer { _ = try? Self.run(["rm", "-f", name]) }
        try "\(runID) \(tag)\n".write(toFile: "\(directory)/stamp", atomically: true, encoding: .utf8)
        try Self.run(["cp", "\(directory)/stamp", "\(name):/stamp"])
        try Self.run(["commit", name, target])
        try Self.run((pushConfig.map { ["--config", $0] } ?? []) + ["push", target])
        try Self.run(["rmi", target])
    }

    /// Removes the registry's images from the host (pulled by tag or digest, or made by
    /// `publish`) and stops it.
    func stop() {
        guard !stopped else { return }
        stopped = true
        let listing = "\(directory)/images"
        let repository = "127.0.0.1:\(port)/\(runID)/app"
        let pulled = [
            "images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}", repository,
        ]
        let made = ["images", "-q", "--filter", "label=io.reconcile.test=\(runID)"]
        var references: [String] = []
        for arguments in [pulled, made] {
            guard let pid = try? Spawn.start(Self.docker, arguments, output: listing) else { continue }
            _ = Spawn.wait(pid)
            let text = (try? String(contentsOfFile: listing, encoding: .utf8)) ?? ""
            references += text.split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init)
        }
        for reference in references where !reference.contains("<none>") {
            _ = try? Self.run(["rmi", "-f", reference])
        }
        process.stop()
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> Int32 {
        let status = Spawn.wait(try Spawn.start(docker, arguments))
        guard status == 0 else { throw FixtureError("docker \(arguments.joined(separator: " ")) failed (\(status))") }
        return status
    }
}
