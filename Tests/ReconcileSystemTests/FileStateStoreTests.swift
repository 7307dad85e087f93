import Foundation
import ReconcileCore
import ReconcileDocker
import ReconcileSystem
import ReconcileTestSupport
import Testing

/// Issue 8, class 13: the state directory is 0700 and ours, and no file in it is followed through
/// a symbolic link, so another local user cannot make a root apply write where they choose.
struct FileStateStoreTests {
    func temporary() throws -> String {
        let path = NSTemporaryDirectory() + "reconcile-state-\(UUID().uuidString)"
        return path
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        lstat(path, &info)
        return info.st_mode & 0o777
    }

    @Test func createsThePrivateDirectoryAndPrivateFiles() throws {
        let path = try temporary() + "/nested/state"
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let store = try FileStateStore(path: path)
        #expect(mode(path) == 0o700)
        try store.appendJournal(Self.entry)
        let key = try store.fingerprintKey(create: true)
        #expect(key?.count == 32)
        #expect(try store.fingerprintKey(create: false) == key)
        #expect(mode("\(path)/journal.jsonl") == 0o600)
        #expect(mode("\(path)/fingerprint.key") == 0o600)
        #expect(try store.journal() == [Self.entry])
    }

    @Test func refusesADirectoryOthersMayWriteOrThatIsNotOurs() throws {
        let path = try temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        mkdir(path, 0o777)
        chmod(path, 0o777)
        #expect {
            try FileStateStore(path: path)
        } throws: { error in
            "\(error)"
                == "the state directory \(path) may be written by other users (mode 777); run chmod 700 \(path), or choose another with --state-dir"
        }
        chmod(path, 0o755)
        _ = try FileStateStore(path: path)
        #expect(mode(path) == 0o700, "a directory only others could read is tightened")
        if geteuid() == 0 {
            chown(path, 65534, 65534)
            #expect {
                try FileStateStore(path: path)
            } throws: { error in
                "\(error)".hasPrefix("the state directory \(path) belongs to uid 65534, not to you (uid 0)")
            }
        }
    }

    @Test func aSymlinkPlantedForAFileIsNeverFollowed() throws {
        let path = try temporary()
        let victim = path + "-victim"
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: victim)
        }
        let store = try FileStateStore(path: path)
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        symlink(victim, "\(path)/journal.jsonl")
        #expect {
            try store.appendJournal(Self.entry)
        } throws: { error in
            "\(error)".contains("journal.jsonl is a symbolic link; reconcile does not follow links")
        }
        // A record written over a planted link replaces the link, never the file it points at.
        symlink(victim, "\(path)/app-staging.deploy.json")
        try store.saveDeployRecord(DeployRecord(container: "app-staging", step: .begun, pid: 1, since: "t"))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(try store.deployRecord("app-staging")?.step == .begun)
        try store.clearDeployRecord("app-staging")
        #expect(try store.deployRecord("app-staging") == nil)
    }

    /// Found by attacking: a FIFO in a file's place hung every command; a hard link was written through.
    @Test func aFIFOOrAHardLinkInAFilesPlaceIsRefusedAtOnce() throws {
        let path = try temporary()
        let victim = path + "-victim"
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: victim)
        }
        let store = try FileStateStore(path: path)
        mkfifo("\(path)/fingerprint.key", 0o600)
        mkfifo("\(path)/journal.jsonl", 0o600)
        let started = ContinuousClock.now
        #expect(throws: StateError.self) { try store.fingerprintKey(create: true) }
        #expect(throws: StateError.self) { try store.appendJournal(Self.entry) }
        // At once (a FIFO would block a plain open for ever); generous for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(5))
        unlink("\(path)/journal.jsonl")
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        link(victim, "\(path)/journal.jsonl")
        #expect {
            try store.appendJournal(Self.entry)
        } throws: { error in
            "\(error)".contains("journal.jsonl has other names (hard links)")
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
    }

    /// Found by attacking: two first applies made two keys, and fingerprints then differed.
    @Test func twoStoresMakingTheKeyAtOnceAgreeOnIt() async throws {
        let path = try temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try FileStateStore(path: path)
        let keys = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            for _ in 0..<8 { group.addTask { try FileStateStore(path: path).fingerprintKey(create: true) } }
            return try await group.reduce(into: [[UInt8]?]()) { $0.append($1) }
        }
        #expect(Set(keys.compactMap { $0 }).count == 1)
    }

    @Test func aStateDirectoryThatIsASymlinkIsRefused() throws {
        let real = try temporary()
        let link = real + "-link"
        defer {
            try? FileManager.default.removeItem(atPath: real)
            try? FileManager.default.removeItem(atPath: link)
        }
        _ = try FileStateStore(path: real)
        symlink(real, link)
        #expect {
            try FileStateStore(path: link)
        } throws: { error in
            "\(error)".hasPrefix("the state directory \(link) is a symbolic link")
        }
    }

    @Test func readsTheMarkerOfAnEarlierVersion() throws {
        let path = try temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try FileStateStore(path: path)
        try "abc123\n".write(toFile: "\(path)/app-staging.unverified", atomically: true, encoding: .utf8)
        #expect(try store.deployRecord("app-staging")?.gatingID == "abc123")
        try store.clearDeployRecord("app-staging")
        #expect(!FileManager.default.fileExists(atPath: "\(path)/app-staging.unverified"))
    }

    @Test func aBrokenKeyIsReportedNotReplaced() throws {
        let path = try temporary()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try FileStateStore(path: path)
        let descriptor = open("\(path)/fingerprint.key", O_WRONLY | O_CREAT, 0o600)
        _ = "not hex".withCString { write(descriptor, $0, 7) }
        close(descriptor)
        #expect {
            try store.fingerprintKey(create: true)
        } throws: { error in
            "\(error)".hasPrefix("the fingerprint key \(path)/fingerprint.key is not 64 hex digits")
        }
    }

    @Test func withoutCreateAMissingDirectoryReadsAsEmpty() throws {
        let path = try temporary()
        let store = try FileStateStore(path: path, create: false)
        #expect(try store.fingerprintKey(create: false) == nil)
        #expect(try store.journal().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    static let entry = JournalEntry(
        time: "2026-11-27T00:00:00Z", environment: "staging", file: "s.yml", revision: nil, oldImage: nil,
        oldImageID: nil, newImage: "a:v1", newImageID: nil, action: "create", result: "converged", exitCode: 0,
        seconds: 1, failedCheck: nil)
}

/// Issue 8, class 4: a probe or an engine call that gets its headers and then nothing more is cut
/// off at its deadline.
struct StalledAnswerTests {
    @Test func aProbeWhoseBodyStallsReturnsAtItsTimeout() async throws {
        let server = try StallingServer(
            response: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"sta")
        defer { server.close() }
        let started = ContinuousClock.now
        let answer = await HTTPHealthProbe().get(
            host: "127.0.0.1", port: server.port, path: "/health", timeout: .milliseconds(500))
        let took = ContinuousClock.now - started
        #expect(answer.status == nil)
        #expect(answer.error == "no complete answer within 500ms")
        // 4 s was seen with every test running on 2 cores; the failure this guards against is no end at all.
        #expect(took < .seconds(15), "took \(took)")
    }

    @Test func anEngineThatStallsFailsWithinItsDeadline() async throws {
        let path = NSTemporaryDirectory() + "stall-\(UUID().uuidString.prefix(8)).sock"
        let server = try StallingServer(
            unixPath: path, response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n")
        defer { server.close() }
        let started = ContinuousClock.now
        await #expect {
            _ = try await DockerEngine.connect(DockerEndpoint(transport: .unix(path: path)))
        } throws: { error in
            "\(error)" == "cannot reach the Docker engine at unix://\(path) (no complete answer to ping within 2s); "
                + "is dockerd running, or is DOCKER_HOST set?"
        }
        // 8.7 s was seen with every test running on 2 cores; what this guards against is waiting forever.
        #expect(ContinuousClock.now - started < .seconds(20), "the 2 s ping deadline, on a loaded machine")
    }
}

struct LiveProcessIdentityTests {
    @Test func tellsALiveHolderFromAGoneOneAndCannotTellForAnotherMachine() throws {
        let identity = LiveProcessIdentity()
        let me = identity.current(since: Date(), ttl: .seconds(60))
        #expect(me.pid == getpid())
        #expect(identity.isAlive(me) == true)
        var reused = me
        reused.processStart = "1"
        #expect(identity.isAlive(reused) == false, "the same pid started at another time is another process")
        var gone = me
        gone.pid = Int32.max - 1
        #expect(identity.isAlive(gone) == false)
        var elsewhere = me
        elsewhere.bootID = "another-machine"
        #expect(identity.isAlive(elsewhere) == nil)
    }
}

/// Temporary files of a writer that was killed are swept; a live writer's are kept.
@Test func temporaryFilesOfAGoneWriterAreSwept() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    _ = try FileStateStore(path: folder)
    let gone = "\(folder)/.app-staging.deploy.json.999999.12.tmp"
    let alive = "\(folder)/.app-staging.deploy.json.\(getpid()).13.tmp"
    for file in [gone, alive] { FileManager.default.createFile(atPath: file, contents: Data("{}".utf8)) }
    _ = try FileStateStore(path: folder)
    #expect(!FileManager.default.fileExists(atPath: gone))
    #expect(FileManager.default.fileExists(atPath: alive))
}
