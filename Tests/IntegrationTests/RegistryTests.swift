import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 10: private registries. A real registry (Debian's docker-registry) on loopback with
/// htpasswd (bcrypt) logins; the docker CLI logs in and pushes into a test DOCKER_CONFIG; the
/// release-like binary pulls with the login the docker CLI wrote, with a credential helper on
/// PATH, and fails with a sentence that says what to do when there is none, a wrong one, or no
/// such tag. The password appears nowhere reconcile writes.
@Suite(.timeLimit(.minutes(3)))
struct RegistryTests {
    static let user = "alice"
    static let password = "s3cret-Pa55-9f2c"

    @Test func pullsWithTheDockerCLIsLoginsAndSaysWhatToDoWithout() async throws {
        try await EngineFixture.with { fixture in
            let registry = try await Registry.start(
                port: try fixture.freePort(), runID: fixture.runID, login: (Self.user, Self.password))
            defer { registry.stop() }
            let workspace = try Workspace()
            let root = workspace.root.path
            let repository = "\(registry.address)/\(fixture.runID)/app"

            // The real `docker login` wrote `auths` into this DOCKER_CONFIG (Registry.start), and
            // pushed images of the test's own (never the shared fixtures, whose repo digests other
            // tests read), then removed them here: apply has to pull them.
            let loggedIn = try #require(registry.pushConfig)
            for tag in ["v1", "v2", "v3"] {
                try registry.publish("reconcile-fixture:\(tag == "v2" ? "v2" : "v1")", as: tag)
            }

            let port = try fixture.freePort()
            let file = "\(workspace.environments)/staging.yml"
            func write(_ tag: String) throws {
                try workspace.write(
                    "environments/staging.yml",
                    fixture.yaml(image: "\(repository):\(tag)", port: port, extra: ApplyIntegrationTests.fastGate))
            }
            let state = "\(root)/state"
            func apply(config: String, path: String? = nil) throws -> (code: Int32, output: String) {
                var environment = ["DOCKER_CONFIG": config, "RECONCILE_STATE_DIR": state]
                if let path { environment["PATH"] = path }
                return try Binary.run(["apply", file], environment: environment)
            }
            try write("v1")

            // No login: the registry wants one; nothing runs, and the sentence says what to run.
            let none = try apply(config: "\(root)/empty")
            #expect(none.code == 1, "\(none.output)")
            #expect(
                none.output.contains("there is none for \(registry.address); run `docker login \(registry.address)`"),
                "\(none.output)")
            #expect(try await fixture.engine.inspectContainer("\(fixture.service)-staging") == nil)

            // A wrong password: refused, and the sentence says to log in again.
            let wrong = "\(root)/wrong"
            try FileManager.default.createDirectory(atPath: wrong, withIntermediateDirectories: true)
            let bad = Data("\(Self.user):not-the-password".utf8).base64EncodedString()
            try #"{"auths": {"\#(registry.address)": {"auth": "\#(bad)"}}}"#.write(
                toFile: "\(wrong)/config.json", atomically: true, encoding: .utf8)
            let refused = try apply(config: wrong)
            #expect(refused.code == 1, "\(refused.output)")
            #expect(refused.output.contains("run `docker login \(registry.address)` again"), "\(refused.output)")
            #expect(!refused.output.contains("not-the-password") && !refused.output.contains(bad))

            // The login `docker login` wrote: pulled, deployed.
            let good = try apply(config: loggedIn)
            #expect(good.code == 0, "\(good.output)")
            #expect(good.output.contains("pulled \(repository):v1"), "\(good.output)")
            #expect(try await fixture.get(port: port, path: "/health").1.contains(#""version":"v1""#))

            // A credential helper on PATH, named by credHelpers for this registry.
            let helpers = "\(root)/bin"
            try FileManager.default.createDirectory(atPath: helpers, withIntermediateDirectories: true)
            try Self.helper(
                at: "\(helpers)/docker-credential-reconcile-test",
                body: """
                    read server
                    [ "$server" = "\(registry.address)" ] || { echo "credentials not found in native keychain"; exit 1; }
                    printf '{"ServerURL":"%s","Username":"\(Self.user)","Secret":"\(Self.password)"}\\n' "$server"
                    """)
            try Self.helper(
                at: "\(helpers)/docker-credential-locked", body: "echo 'the keychain is locked' >&2; exit 3")
            let helped = "\(root)/helped"
            try FileManager.default.createDirectory(atPath: helped, withIntermediateDirectories: true)
            try #"{"credHelpers": {"\#(registry.address)": "reconcile-test"}, "credsStore": "locked"}"#.write(
                toFile: "\(helped)/config.json", atomically: true, encoding: .utf8)
            let path = "\(helpers):" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            try write("v2")
            let viaHelper = try apply(config: helped, path: path)
            #expect(viaHelper.code == 0, "\(viaHelper.output)")
            #expect(try await fixture.get(port: port, path: "/health").1.contains(#""version":"v2""#))

            // A helper that fails (credsStore for every other registry) is named; nothing changes.
            let locked = "\(root)/locked"
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
            try #"{"credsStore": "locked"}"#.write(toFile: "\(locked)/config.json", atomically: true, encoding: .utf8)
            try write("v3")
            let failing = try apply(config: locked, path: path)
            #expect(failing.code == 1, "\(failing.output)")
            #expect(failing.output.contains("docker-credential-locked failed"), "\(failing.output)")
            #expect(try await fixture.get(port: port, path: "/health").1.contains(#""version":"v2""#))

            // No such tag: said so, before anything running is touched.
            try write("v9")
            let missing = try apply(config: loggedIn)
            #expect(missing.code == 1, "\(missing.output)")
            #expect(missing.output.contains("the registry has no such image or tag"), "\(missing.output)")
            #expect(try await fixture.get(port: port, path: "/health").1.contains(#""version":"v2""#))

            // The registry gone: said so, and v2 still serves.
            registry.stop()
            try write("v3")
            let down = try apply(config: loggedIn)
            #expect(down.code == 1, "\(down.output)")
            #expect(
                down.output.contains("the registry \(registry.address) cannot be reached; check its address"),
                "\(down.output)")
            #expect(try await fixture.get(port: port, path: "/health").1.contains(#""version":"v2""#))

            // The password, and its base64 form, reached neither the output nor the state directory.
            let encoded = Data("\(Self.user):\(Self.password)".utf8).base64EncodedString()
            for run in [none, refused, good, viaHelper, failing, missing, down] {
                #expect(!run.output.contains(Self.password) && !run.output.contains(encoded))
            }
            for name in try FileManager.default.contentsOfDirectory(atPath: state) {
                let text = (try? String(contentsOfFile: "\(state)/\(name)", encoding: .utf8)) ?? ""
                #expect(!text.contains(Self.password) && !text.contains(encoded), "\(name) holds the password")
            }
            try await fixture.removeServiceContainers()
        }
    }

    static func helper(at path: String, body: String) throws {
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }
}

/// The docker CLI, run with its output discarded.
enum Docker {
    static let path = "/usr/bin/docker"

    static func run(_ arguments: [String], environment: [String: String] = [:]) -> Int32 {
        guard let pid = try? Spawn.start(path, arguments, environment: environment) else { return -2 }
        return Spawn.wait(pid)
    }
}

/// The reconcile executable built beside the test bundle, run as a user would, its stdout and
/// stderr collected together.
enum Binary {
    /// Runs the binary and waits without holding a thread of the test process's small pool: a
    /// long run (a Swarm deploy that waits 30 s) must not stall every other test beside it.
    static func launch(_ arguments: [String], environment: [String: String]) async throws -> (
        code: Int32, output: String
    ) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("reconcile-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let code = await Spawn.finished(
            try Spawn.start(CrashSafetyTests.binary, arguments, environment: environment, output: log))
        return (code, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    static func run(_ arguments: [String], environment: [String: String]) throws -> (code: Int32, output: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("reconcile-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let code = Spawn.wait(
            try Spawn.start(CrashSafetyTests.binary, arguments, environment: environment, output: log))
        return (code, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}
