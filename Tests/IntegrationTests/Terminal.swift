import Foundation
import ReconcileTestSupport

/// Runs a program on a pseudo-terminal (stdin, stdout and stderr all the terminal), the way a
/// person at 3 a.m. runs it: `isatty` is true, prompts are shown and answered.
struct TerminalRun {
    let status: Int32
    let output: String

    /// Starts `path` on a new terminal, types `input` into it, and collects everything it prints.
    static func run(_ path: String, _ arguments: [String], environment: [String: String], input: String = "")
        async throws -> TerminalRun
    {
        // The reads block: keep them off the test's cooperative threads.
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result { try blocking(path, arguments, environment: environment, input: input) })
            }
        }
    }

    private static func blocking(_ path: String, _ arguments: [String], environment: [String: String], input: String)
        throws -> TerminalRun
    {
        // posix_openpt and friends are not imported from Glibc: open /dev/ptmx, unlock, ask its number.
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: CInt = 0
        var number: CInt = 0
        // TIOCSPTLCK = _IOW('T', 0x31, int) and TIOCGPTN = _IOR('T', 0x30, unsigned int) on Linux.
        let setLock: UInt = 0x4004_5431
        let getNumber: UInt = 0x8004_5430
        guard master >= 0, ioctl(master, setLock, &unlock) == 0, ioctl(master, getNumber, &number) == 0
        else { throw FixtureError("cannot open a pseudo-terminal") }
        defer { close(master) }
        let slave = "/dev/pts/\(number)"

        let pid = try Spawn.start(
            path, arguments, environment: environment.merging(["TERM": "dumb"]) { $1 },
            streams: .terminal(slave, master: master))

        // Typed ahead: the terminal holds the line until the program reads it.
        if !input.isEmpty { _ = input.withCString { write(master, $0, strlen($0)) } }
        // Read until the program exits and the terminal closes (read then fails with EIO).
        var collected = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(master, &buffer, buffer.count)
            if count > 0 {
                collected.append(contentsOf: buffer[0..<count])
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        return TerminalRun(status: Spawn.wait(pid), output: String(decoding: collected, as: UTF8.self))
    }
}
