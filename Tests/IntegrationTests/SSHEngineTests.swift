import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 10: `DOCKER_HOST=ssh://user@host:port`, the docker CLI's way, against a real sshd on
/// loopback (its own host key, port and authorized key) that runs `docker system dial-stdio` on
/// this machine: diff and apply through it, and the sentences for a key that is refused, a host
/// key that is unknown and a port where nothing listens.
@Suite(.timeLimit(.minutes(2)))
struct SSHEngineTests {
    /// An sshd of the test's own, and a client key it accepts.
    final class Server {
        let folder: String
        let port: Int
        private var process: ServerProcess?

        init(port: Int) async throws {
            self.port = port
            folder = NSTemporaryDirectory() + "reconcile-sshd-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // sshd's privilege separation folder; the Debian package makes it only when its service starts.
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            for key in ["host", "client", "stranger"] {
                let made = await Spawn.finished(
                    try Spawn.start("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", "\(folder)/\(key)"]))
                guard made == 0 else { throw FixtureError("ssh-keygen failed (\(made))") }
            }
            try FileManager.default.copyItem(atPath: "\(folder)/client.pub", toPath: "\(folder)/authorized_keys")
            try """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(folder)/host
            AuthorizedKeysFile \(folder)/authorized_keys
            PidFile \(folder)/sshd.pid
            StrictModes no
            UsePAM no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            LogLevel ERROR
            """.write(toFile: "\(folder)/sshd_config", atomically: true, encoding: .utf8)
            let hostKey = try String(contentsOfFile: "\(folder)/host.pub", encoding: .utf8)
            try "[127.0.0.1]:\(port) \(hostKey)".write(
                toFile: "\(folder)/known_hosts", atomically: true, encoding: .utf8)
            let process = ServerProcess(
                pid: try Spawn.start(
                    "/usr/sbin/sshd", ["-D", "-e", "-f", "\(folder)/sshd_config"], output: "\(folder)/sshd.log"),
                folder: folder)
            self.process = process
            do {
                try await process.waitForPort(port)
            } catch {
                stop()
                throw FixtureError("sshd did not listen on \(port)")
            }
        }

        func options(key: String = "client", knownHosts: Bool = true) -> String {
            "-i \(folder)/\(key) -o IdentitiesOnly=yes -o UserKnownHostsFile="
                + (knownHosts ? "\(folder)/known_hosts" : "/dev/null") + " -o StrictHostKeyChecking=yes"
        }

        func stop() { process?.stop() }
    }

    @Test func diffAndApplyThroughSSHAndSentencesForWhatFails() async throws {
        try await EngineFixture.with { fixture in
            let server = try await Server(port: try fixture.freePort())
            defer { server.stop() }
            let workspace = try Workspace()
            let port = try fixture.freePort()
            let file = try workspace.write(
                "environments/staging.yml",
                fixture.yaml(image: "reconcile-fixture:v1", port: port, extra: ApplyIntegrationTests.fastGate))
            let host = "ssh://root@127.0.0.1:\(server.port)"
            // A temporary folder of its own, so that other tests' tunnels do not count.
            let temporary = workspace.root.appendingPathComponent("tmp").path
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            func run(_ arguments: [String], options: String, host: String = host) throws -> (
                code: Int32, output: String
            ) {
                try Binary.run(
                    arguments,
                    environment: [
                        "DOCKER_HOST": host, "RECONCILE_SSH_OPTIONS": options, "TMPDIR": temporary,
                        "RECONCILE_STATE_DIR": workspace.root.appendingPathComponent("state").path,
                    ])
            }

            let diff = try run(["diff", file], options: server.options())
            #expect(diff.code == 2, "\(diff.output)")
            #expect(diff.output.contains("+ create \(fixture.service)-staging"), "\(diff.output)")
            let apply = try run(["apply", file], options: server.options())
            #expect(apply.code == 0, "\(apply.output)")
            #expect(try await fixture.get(port: port, path: "/health").1.contains(#""version":"v1""#))
            let status = try run(["status", file], options: server.options())
            #expect(status.output.contains("\(fixture.service)-staging") && status.output.contains("running"))

            // A key the server does not accept, an unknown host key, nothing listening: ssh's own reason.
            let refused = try run(["diff", file], options: server.options(key: "stranger"))
            #expect(refused.code == 1)
            #expect(refused.output.contains("Permission denied (publickey"), "\(refused.output)")
            #expect(
                refused.output.contains(
                    "check that `ssh -o BatchMode=yes -p \(server.port) root@127.0.0.1 docker version` works"),
                "\(refused.output)")
            let unknown = try run(["diff", file], options: server.options(knownHosts: false))
            #expect(unknown.code == 1)
            #expect(unknown.output.contains("Host key verification failed"), "\(unknown.output)")
            let nothing = try run(["diff", file], options: server.options(), host: "ssh://root@127.0.0.1:1")
            #expect(nothing.code == 1)
            #expect(
                nothing.output.contains("connect to host 127.0.0.1 port 1: Connection refused"), "\(nothing.output)")

            // Every run removed its socket folder, and no ssh of ours is left running.
            #expect(try Self.tunnelFolders(in: temporary).isEmpty)
            try await fixture.removeServiceContainers()
        }
    }

    /// A signal while ssh is still connecting (to a server that accepts and never answers) ends
    /// reconcile as the signal's default does, and takes the socket folder and the ssh with it.
    @Test func aSignalWhileConnectingLeavesNothingBehind() async throws {
        try await EngineFixture.with { fixture in
            let port = try fixture.freePort()
            let silent = try ServerProcess.socat([
                "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork", "EXEC:/bin/sleep 60",
            ])
            defer { silent.stop() }
            try await silent.waitForPort(port)
            let workspace = try Workspace()
            let file = try workspace.write("environments/staging.yml", fixture.yaml(port: try fixture.freePort()))
            // A temporary folder of its own, so that other tests' tunnels do not count.
            let temporary = workspace.root.appendingPathComponent("tmp").path
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            let log = workspace.root.appendingPathComponent("status.log").path
            let pid = try Spawn.start(
                CrashSafetyTests.binary, ["status", file],
                environment: ["DOCKER_HOST": "ssh://root@127.0.0.1:\(port)", "TMPDIR": temporary], output: log)
            // Once ssh is connecting: the tunnel's folder exists.
            var waited = 0
            while try Self.tunnelFolders(in: temporary).isEmpty, waited < 300 {
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            try await Task.sleep(for: .milliseconds(300))
            kill(pid, SIGTERM)
            #expect(await Spawn.finished(pid) == -1, "ended by the signal, as by default")
            #expect(try Self.tunnelFolders(in: temporary).isEmpty, "the socket folder was left behind")
            // The ssh it started is gone too (it would otherwise wait out its ConnectTimeout).
            var left = true
            for _ in 0..<40 where left {
                let listing = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
                left = listing.contains { entry in
                    guard Int32(entry) != nil,
                        let command = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
                    else { return false }
                    return String(decoding: command, as: UTF8.self).contains("\(port)\u{0}--\u{0}127.0.0.1")
                }
                if left { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(!left, "an ssh to port \(port) outlived reconcile")
        }
    }

    static func tunnelFolders(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("reconcile-ssh-") }
    }
}
