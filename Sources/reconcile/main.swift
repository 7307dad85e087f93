import Foundation
import ReconcileCLI

// All logic lives in ReconcileCLI so that tests drive the same commands in-process.
exit(await Reconcile.run(Array(CommandLine.arguments.dropFirst()), context: .live()))
