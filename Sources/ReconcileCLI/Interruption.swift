import Foundation
import ReconcileCore

/// Catches SIGINT, SIGTERM and SIGHUP (a dropped ssh session) while an apply runs, so that the current environment's deploy (or
/// rollback) finishes safely instead of dying half-way; the apply then stops and exits with
/// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
///
/// The handlers are the process's own from its first instruction (`StopSignals.prepare()` in
/// main): each writes the signal's number to a pipe that a thread reads. With no apply listening,
/// the thread ends the process as the signal's default would. Not SIG_IGN and a dispatch source:
/// a signal the kernel hands to a thread that does not block it is dropped under SIG_IGN, and a
/// SIGTERM sent while an apply was still starting went unseen on a busy machine.
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var caught: Int32?
    private var current: String?
    private let report: @Sendable (String) -> Void

    /// Also told of the first signal (watch stops its loop with it).
    var onSignal: (@Sendable () -> Void)?

    init(report: @escaping @Sendable (String) -> Void) { self.report = report }

    /// The exit code for the signal received, or nil when none came.
    var exitCode: Int32? { lock.withLock { caught.map { 128 + $0 } } }

    /// The signal received, or nil when none came.
    var caughtSignal: Int32? { lock.withLock { caught } }

    /// Names the environment being applied, for the message a signal prints.
    func working(on environment: String?) { lock.withLock { current = environment } }

    /// Listens from now on: a signal is this apply's to finish safely.
    func install() {
        StopSignals.prepare()
        StopSignals.listeners.withLock { $0.append(self) }
    }

    func uninstall() {
        StopSignals.listeners.withLock { $0.removeAll { $0 === self } }
    }

    /// A signal came (from the reader thread).
    fileprivate func received(_ number: Int32) {
        let (first, environment) = lock.withLock { () -> (Bool, String?) in
            let first = caught == nil
            if first { caught = number }
            return (first, current)
        }
        guard first else { return }
        onSignal?()
        let name = number == SIGINT ? "SIGINT" : number == SIGHUP ? "SIGHUP" : "SIGTERM"
        report(
            environment.map { "received \(name); finishing \($0) safely, then stopping" }
                ?? "received \(name); stopping")
    }
}

/// The process's handlers for SIGINT, SIGTERM and SIGHUP, installed once.
public enum StopSignals {
    /// The applies listening now; with none, a signal ends the process as by default.
    static let listeners = Locked<[Interruption]>([])
    /// What to undo before a signal ends the process (an ssh tunnel's socket and processes).
    static let cleanups = Locked<[@Sendable () -> Void]>([])

    /// Runs `action` if a signal ends the process before it is done (it must be safe to run twice).
    public static func atSignal(_ action: @escaping @Sendable () -> Void) {
        cleanups.withLock { $0.append(action) }
    }
    private static let prepared = Locked(false)
    /// The pipe's write end, for the handler (which may read only such a global).
    nonisolated(unsafe) private static var writeEnd: Int32 = -1

    /// Installs the handlers and starts the thread that reads what they write. Call it first
    /// thing in main; an apply calls it too (tests run applies in-process).
    public static func prepare() {
        let first = prepared.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        // A full pipe (a signal storm) must not block the handler: the first signal is what counts.
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        writeEnd = ends[1]
        let readEnd = ends[0]
        Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { return }
                let number = Int32(byte)
                let listening = listeners.withLock { $0 }
                if listening.isEmpty {
                    // Nobody is deploying: undo what must not outlive the process, then end as the
                    // signal's default would.
                    for action in cleanups.withLock({ $0 }) { action() }
                    signal(number, SIG_DFL)
                    kill(getpid(), number)
                }
                for interruption in listening { interruption.received(number) }
            }
        }.start()
        for number in [SIGINT, SIGTERM, SIGHUP] {
            // glibc's signal() installs the handler with SA_RESTART and keeps it after a delivery.
            _ = signal(number) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(StopSignals.writeEnd, &byte, 1)
            }
        }
    }
}
