import ArgumentParser
import ReconcileCore

extension Reconcile {
    /// `reconcile validate`: checks environment files without touching the engine.
    struct Validate: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check environment files and report every problem with file, line, column and field.")

        @OptionGroup var paths: PathArguments

        func execute(_ context: CommandContext) async -> Int32 {
            do {
                let loaded = try EnvironmentLoader.load(paths.paths)
                for entry in loaded.parsed {
                    let spec = entry.spec
                    context.say(
                        "ok  \(spec.file): \(spec.environment) → container \(spec.containerName), port \(spec.bind):\(spec.port), image \(spec.image)"
                    )
                }
                let count = loaded.parsed.count
                context.say("\(count) environment file\(count == 1 ? "" : "s") valid")
                return ExitCodes.success
            } catch {
                return report(error, context)
            }
        }
    }
}
