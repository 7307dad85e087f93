import Foundation
import ReconcileCore
import ReconcileDocker
import ReconcileTestSupport
import Testing

/// Issue 13, several engines: environment files that name their engine (`engine:`), one on the
/// shared engine, one on a dockerd of the test's own that listens on loopback with `--tlsverify`
/// (certificates made here with openssl), and one that is down; and the one-line errors for each
/// way TLS goes wrong.
@Suite(.timeLimit(.minutes(4)))
struct SeveralEnginesTests {
    @Test func oneApplyOverTwoEnginesAndADeadOne() async throws {
        try await EngineFixture.with { fixture in
            let own = try OwnEngine()
            let certs = try Certificates.make()
            let other = try Certificates.make()
            defer {
                try? FileManager.default.removeItem(atPath: certs)
                try? FileManager.default.removeItem(atPath: other)
            }
            let tlsPort = try fixture.freePort()
            do {
                try await own.start(extra: [
                    "--tlsverify", "--tlscacert", "\(certs)/ca.pem", "--tlscert", "\(certs)/server.pem",
                    "--tlskey", "\(certs)/server-key.pem", "-H", "tcp://127.0.0.1:\(tlsPort)",
                ])
                await own.load("reconcile-fixture:v1")
                try await scenario(fixture, own: own, certs: certs, other: other, tlsPort: tlsPort)
            } catch {
                await own.remove()
                try? await fixture.removeServiceContainers()
                throw error
            }
            await own.remove()
            try await fixture.removeServiceContainers()
        }
    }

    func scenario(_ fixture: EngineFixture, own: OwnEngine, certs: String, other: String, tlsPort: Int) async throws {
        let workspace = try Workspace()
        let state = workspace.root.appendingPathComponent("state").path
        // The certificates beside the files, named relative to them.
        let folder = workspace.root.appendingPathComponent("environments/certs").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["ca.pem", "cert.pem", "key.pem"] {
            try FileManager.default.copyItem(atPath: "\(certs)/\(name)", toPath: "\(folder)/\(name)")
        }
        let gate = "health: {path: /health, startup: 2s, interval: 200ms, attempts: 10, timeout: 1s}\npull: never"
        let (localPort, remotePort) = (try fixture.freePort(), try fixture.freePort())
        let tls = "tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}"
        let local = try workspace.write(
            "environments/a-local.yml", fixture.yaml(environment: "local", port: localPort, extra: gate))
        let remote = try workspace.write(
            "environments/b-remote.yml",
            fixture.yaml(
                environment: "remote", port: remotePort,
                extra: gate + "\nengine: {host: tcp://127.0.0.1:\(tlsPort), \(tls)}"))
        let dead = try workspace.write(
            "environments/c-dead.yml",
            fixture.yaml(
                environment: "dead", port: try fixture.freePort(), extra: gate + "\nengine: tcp://127.0.0.1:1"))
        let folderOfFiles = workspace.root.appendingPathComponent("environments").path
        let environment = ["RECONCILE_STATE_DIR": state]

        // One apply over the three: the two that can be reached converge, the dead one is refused
        // in a line that names it, and does not hold up the others (exit 5: partly applied).
        let started = ContinuousClock.now
        let applied = try await Binary.launch(["apply", folderOfFiles], environment: environment)
        #expect(applied.code == 5, "\(applied.output)")
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(applied.output.contains("local: result converged"), "\(applied.output)")
        #expect(applied.output.contains("remote: result converged"), "\(applied.output)")
        #expect(
            applied.output.contains(
                "dead: result refused (exit 1): refused: cannot reach the Docker engine at tcp://127.0.0.1:1 (engine: in the file) "
                    + "(connection refused)"), "\(applied.output)")
        // Each serves from its own engine: the remote one is not on the shared engine.
        #expect(try await fixture.get(port: localPort, path: "/health").0 == 200)
        #expect(try await fixture.get(port: remotePort, path: "/health").0 == 200)
        #expect(try await fixture.engine.inspectContainer("\(fixture.service)-remote") == nil)
        #expect(try await fixture.engine.inspectContainer("\(fixture.service)-local") != nil)

        // diff and status over the two that answer: in sync, and the engine named.
        let diff = try await Binary.launch(["diff", local, remote], environment: environment)
        #expect(diff.code == 0, "\(diff.output)")
        #expect(diff.output.contains("→ container \(fixture.service)-remote on tcp://127.0.0.1:\(tlsPort)"))
        let status = try await Binary.launch(["status", local, remote, "--state-dir", state], environment: environment)
        #expect(status.code == 0, "\(status.output)")
        #expect(status.output.contains("on tcp://127.0.0.1:\(tlsPort)"), "\(status.output)")
        // A second apply of all three changes nothing on the two: exit 1 for the dead one alone.
        let again = try await Binary.launch(["apply", folderOfFiles, "--parallel", "2"], environment: environment)
        #expect(again.code == 1, "\(again.output)")
        #expect(!again.output.contains("result converged"), "\(again.output)")
        #expect(again.output.contains("Apply: 2 in sync, 1 refused") || again.output.contains("1 refused"))
        // status during an outage: the engines that answer are shown, the one that does not is named.
        let outage = try await Binary.launch(
            ["status", local, remote, dead, "--state-dir", state], environment: environment)
        #expect(outage.code == 1, "\(outage.output)")
        #expect(outage.output.contains("reconcile: error: dead: cannot reach the Docker engine"), "\(outage.output)")
        #expect(outage.output.contains("\(fixture.service)-remote"), "\(outage.output)")

        // watch follows one engine: files that name two are refused at start; the remote one
        // alone is watched, and a container removed there serves again from the engine's event.
        let both = try await Binary.launch(["watch", local, remote], environment: environment)
        #expect(both.code == 1)
        #expect(both.output.contains("one watch follows one engine"), "\(both.output)")
        let watch = try WatchTests.Watch(
            [remote, "--interval", "1h"], environment: environment,
            log: workspace.root.appendingPathComponent("watch.log").path)
        try await watch.waitFor("engine reachable")
        try await Task.sleep(for: .seconds(1))
        #expect(await OwnEngine.shell("docker -H \(own.host) rm -f \(fixture.service)-remote >/dev/null") == 0)
        try await watch.waitFor("remote: drift-corrected (event", within: .seconds(60))
        #expect(try await fixture.get(port: remotePort, path: "/health", within: .seconds(20)).0 == 200)
        #expect(await watch.stop() == 0, "\(watch.output)")

        // The ways TLS goes wrong: one line each, within seconds, saying which.
        func refused(_ engine: String) async throws -> String {
            let file = try workspace.write(
                "bad/x.yml", fixture.yaml(environment: "x", port: 1024, extra: "pull: never\nengine: \(engine)"))
            let began = ContinuousClock.now
            let run = try await Binary.launch(["diff", file], environment: environment)
            #expect(run.code == 1, "\(run.output)")
            #expect(ContinuousClock.now - began < .seconds(10))
            #expect(run.output.split(separator: "\n").count == 1, "\(run.output)")
            return run.output
        }
        let host = "tcp://127.0.0.1:\(tlsPort)"
        let copies = workspace.root.appendingPathComponent("bad").path
        try FileManager.default.createDirectory(atPath: copies, withIntermediateDirectories: true)
        let wrongCA = try await refused(
            "{host: \(host), tls: {ca: \(other)/ca.pem, cert: \(certs)/cert.pem, key: \(certs)/key.pem}}")
        #expect(wrongCA.contains("the engine's certificate is not signed by the CA given"), "\(wrongCA)")
        let wrongCert = try await refused(
            "{host: \(host), tls: {ca: \(certs)/ca.pem, cert: \(other)/cert.pem, key: \(other)/key.pem}}")
        #expect(wrongCert.contains("the engine refused this client's certificate"), "\(wrongCert)")
        let missing = try await refused(
            "{host: \(host), tls: {ca: \(certs)/ca.pem, cert: nope.pem, key: \(certs)/key.pem}}")
        #expect(
            missing.contains("cannot read the TLS client certificate \(copies)/nope.pem: no such file"), "\(missing)")
        let plain = try await refused(host)
        #expect(plain.contains("the engine there speaks TLS only"), "\(plain)")
        let down = try await refused("tcp://127.0.0.1:1")
        #expect(down.contains("connection refused"), "\(down)")
    }

    /// A certificate for another name (`docker.example`) than the address dialled: refused, through
    /// a TLS relay with that certificate in front of the shared engine.
    @Test func aCertificateForAnotherHostNameAndAnEngineTooOld() async throws {
        try await EngineFixture.with { fixture in
            let certs = try Certificates.make(serverName: "docker.example")
            defer { try? FileManager.default.removeItem(atPath: certs) }
            let port = try fixture.freePort()
            let relay = try ServerProcess.tlsDocker(port: port, certs: certs)
            defer { relay.stop() }
            try await relay.waitForPort(port)
            let workspace = try Workspace()
            let file = try workspace.write(
                "environments/x.yml",
                fixture.yaml(
                    environment: "x", port: 1024,
                    extra:
                        "engine: {host: tcp://127.0.0.1:\(port), tls: {ca: \(certs)/ca.pem, cert: \(certs)/cert.pem, key: \(certs)/key.pem}}"
                ))
            let run = try await Binary.launch(["diff", file], environment: [:])
            #expect(run.code == 1)
            #expect(run.output.contains("the engine's certificate is not for this host name"), "\(run.output)")

            // An engine whose API is older than reconcile needs (a stand-in that answers as Docker 1.11).
            let old = try fixture.freePort()
            let script = """
                import http.server, json, sys
                class H(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        body = b"OK" if self.path.endswith("/_ping") else json.dumps({"Version": "1.11.2", "ApiVersion": "1.23", "Os": "linux", "Arch": "amd64"}).encode()
                        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                    def log_message(self, *args): pass
                http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
                """
            let server = try ServerProcess(
                pid: Spawn.start("/usr/bin/env", ["python3", "-c", script, "\(old)"]), folder: nil)
            defer { server.stop() }
            try await server.waitForPort(old)
            let oldFile = try workspace.write(
                "environments/old.yml",
                fixture.yaml(environment: "old", port: 1024, extra: "engine: tcp://127.0.0.1:\(old)"))
            let tooOld = try await Binary.launch(["diff", oldFile], environment: [:])
            #expect(tooOld.code == 1)
            #expect(tooOld.output.contains("speaks API 1.23, reconcile needs"), "\(tooOld.output)")
        }
    }
}
