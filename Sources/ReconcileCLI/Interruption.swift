import Dispatch
import Foundation

/// Catches SIGINT, SIGTERM and SIGHUP (a dropped ssh session) while an apply runs, so that the current environment's deploy (or
/// rollback) finishes safely instead of dying half-way; the apply then stops and exits with
/// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var caught: Int32?
    private var current: String?
    private var sources: [DispatchSourceSignal] = []
    private let report: @Sendable (String) -> Void

    init(report: @escaping @Sendable (String) -> Void) { self.report = report }

    /// The exit code for the signal received, or nil when none came.
    var exitCode: Int32? { lock.withLock { caught.map { 128 + $0 } } }

    /// The signal received, or nil when none came.
    var caughtSignal: Int32? { lock.withLock { caught } }

    /// Names the environment being applied, for the message a signal prints.
    func working(on environment: String?) { lock.withLock { current = environment } }

    func install() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.received(number) }
            source.resume()
            sources.append(source)
        }
    }

    func uninstall() {
        for source in sources { source.cancel() }
        sources = []
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        signal(SIGHUP, SIG_DFL)
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
