import Foundation
import ReconcileCLI

// A parent may start reconcile with SIGINT, SIGTERM or SIGHUP blocked (exec keeps the signal
// mask; a Swift concurrency thread that spawns a process has every signal blocked): unblock them,
// and give them reconcile's handlers before anything else runs, so that a signal during start-up
// is neither lost nor half-handled.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&stopSignals, number) }
pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
StopSignals.prepare()

// All logic lives in ReconcileCLI so that tests drive the same commands in-process.
exit(await Reconcile.run(Array(CommandLine.arguments.dropFirst()), context: .live()))
