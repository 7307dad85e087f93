import Foundation
import ReconcileCore
import Testing

@testable import ReconcileSystem

/// Issue 10: docker credential helpers run as processes, the docker CLI's protocol, no shell.
struct CredentialHelperProcessTests {
    /// A folder with helper scripts, to put on PATH.
    static func helpers(_ scripts: [String: String]) throws -> String {
        let folder = NSTemporaryDirectory() + "reconcile-helpers-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, body) in scripts {
            let path = "\(folder)/docker-credential-\(name)"
            try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        }
        return folder
    }

    @Test func theDockerCLIsHelperProtocol() async throws {
        let folder = try Self.helpers([
            "ok": #"read s; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"pw"}' "$s" "$s""#,
            "none": "echo 'credentials not found in native keychain'; exit 1",
            "garbled": "echo hello",
            "quits": "echo 'keychain locked' >&2; exit 3",
            "leaks": "read s; echo 'failed for u password S3cr3t-leak'; echo 'S3cr3t-leak' >&2; exit 1",
            "spawns": "sleep 1000 & echo $! > \"$0.pid\"; wait",
            "chatty": "read s; yes A | head -c 2000000",
            "sleeps": "exec sleep 30",
        ])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder):/usr/bin:/bin"
        // Generous: with every test running on 2 cores, starting a shell script took over 2 s.
        let helper = CredentialHelperProcess(timeout: .seconds(60), searchPath: path)

        let found = try #require(try await helper.get(helper: "ok", server: "ghcr.io"))
        #expect(found.username == "u-ghcr.io" && found.secret == "pw")
        #expect(try await helper.get(helper: "none", server: "ghcr.io") == nil)
        await #expect(throws: (any Error).self) { try await helper.get(helper: "garbled", server: "x") }
        await #expect(throws: (any Error).self) { try await helper.get(helper: "missing", server: "x") }
        await #expect(throws: (any Error).self) { try await helper.get(helper: "../../bin/sh", server: "x") }

        // A helper that exits without reading its input: an error every time, never a crash
        // (a pipe written after the child is gone used to end reconcile with SIGILL).
        for _ in 0..<10 {
            do {
                _ = try await helper.get(helper: "quits", server: String(repeating: "r", count: 100_000))
                Issue.record("a failing helper succeeded")
            } catch {
                #expect(
                    "\(error)"
                        == "docker-credential-quits get exited with code 3 (its output is not shown, as it may hold a "
                        + "secret; run `echo SERVER | docker-credential-quits get` to see it)")
            }
        }

        // What a failing helper prints may be the secret itself: never repeated.
        do {
            _ = try await helper.get(helper: "leaks", server: "x")
            Issue.record("a failing helper succeeded")
        } catch {
            #expect(!"\(error)".contains("S3cr3t-leak"), "\(error)")
        }
        // Megabytes on stdout are named as such, not as a helper that cannot run.
        await #expect { _ = try await helper.get(helper: "chatty", server: "x") } throws: {
            "\($0)" == "docker-credential-chatty get printed more than 1 MiB; a helper answers with a short JSON object"
        }

        // A helper that waits (a keychain asking a person) is given up on at the timeout.
        let started = ContinuousClock.now
        do {
            _ = try await CredentialHelperProcess(timeout: .seconds(2), searchPath: path).get(
                helper: "sleeps", server: "x")
            Issue.record("a sleeping helper answered")
        } catch {
            #expect("\(error)" == "docker-credential-sleeps did not answer within 2s")
        }
        #expect(ContinuousClock.now - started < .seconds(10))

        // A helper script's own children are killed with it at the timeout, not left behind.
        do {
            _ = try await CredentialHelperProcess(timeout: .seconds(2), searchPath: path).get(
                helper: "spawns", server: "x")
            Issue.record("a helper that never answers answered")
        } catch {}
        let pidFile = "\(folder)/docker-credential-spawns.pid"
        let child = pid_t(
            try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        let orphan = try #require(child)
        var gone = false
        for _ in 0..<50 where !gone {
            gone = kill(orphan, 0) != 0
            if !gone { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(gone, "the helper's child \(orphan) outlived it")
        if !gone { kill(orphan, SIGKILL) }
    }

    /// ssh's last line: CRLF endings split, empty lines skipped, control characters escaped.
    @Test func sshsLastLineIsOneLineAndPrintable() throws {
        let descriptor = try #require(try? ProcessInput.file("debug1: x\r\nPermission denied (publickey).\r\n\r\n"))
        defer { close(descriptor) }
        #expect(SSHTunnel.lastLine(of: descriptor) == "Permission denied (publickey).")
        let hostile = try #require(try? ProcessInput.file("banner\n\u{1B}[2J\u{1B}[31mPWNED\n"))
        defer { close(hostile) }
        #expect(SSHTunnel.lastLine(of: hostile) == "\\u{1b}[2J\\u{1b}[31mPWNED")
        let empty = try #require(try? ProcessInput.file(""))
        defer { close(empty) }
        #expect(SSHTunnel.lastLine(of: empty) == nil)
    }
}
