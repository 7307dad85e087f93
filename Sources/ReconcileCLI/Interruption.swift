import Foundation

/// Catches SIGINT, SIGTERM and SIGHUP (a dropped ssh session) while an apply runs, so that the current environment's deploy (or
/// rollback) finishes safely instead of dying half-way; the apply then stops and exits with
/// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
///
/// The signals get a handler of their own (it writes the number to a pipe that a thread reads),
/// not SIG_IGN and a dispatch source: with SIG_IGN, a signal the kernel hands to a thread that
/// does not block it (an event-loop or process-monitor thread) is dropped, and a SIGTERM from
/// cron or systemd went unseen when the machine was busy.
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var caught: Int32?
    private var current: String?
    private var reader: Thread?
    private let report: @Sendable (String) -> Void
    /// The pipe's write end, for the handler (which may read only such a global).
    nonisolated(unsafe) private static var writeEnd: Int32 = -1

    init(report: @escaping @Sendable (String) -> Void) { self.report = report }

    /// The exit code for the signal received, or nil when none came.
    var exitCode: Int32? { lock.withLock { caught.map { 128 + $0 } } }

    /// The signal received, or nil when none came.
    var caughtSignal: Int32? { lock.withLock { caught } }

    /// Names the environment being applied, for the message a signal prints.
    func working(on environment: String?) { lock.withLock { current = environment } }

    func install() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        // A full pipe (a signal storm) must not block the handler: the first signal is what counts.
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        Self.writeEnd = ends[1]
        let readEnd = ends[0]
        let thread = Thread { [weak self] in
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { break }
                self?.received(Int32(byte))
            }
            close(readEnd)
        }
        thread.start()
        reader = thread
        for number in [SIGINT, SIGTERM, SIGHUP] {
            // glibc's signal() installs the handler with SA_RESTART and keeps it after a delivery.
            _ = signal(number) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(Interruption.writeEnd, &byte, 1)
            }
        }
    }

    func uninstall() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        signal(SIGHUP, SIG_DFL)
        if Self.writeEnd >= 0 {
            close(Self.writeEnd)
            Self.writeEnd = -1
        }
        reader = nil
    }

    private func received(_ number: Int32) {
        let (first, environment) = lock.withLock { () -> (Bool, String?) in
            let first = caught == nil
            if first { caught = number }
            return (first, current)
        }
        guard first else { return }
        let name = number == SIGINT ? "SIGINT" : number == SIGHUP ? "SIGHUP" : "SIGTERM"
        report(
            environment.map { "received \(name); finishing \($0) safely, then stopping" }
                ?? "received \(name); stopping")
    }
}
