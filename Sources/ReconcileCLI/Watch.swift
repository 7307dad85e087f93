import ArgumentParser
import Foundation
import Logging
import ReconcileCore
import ReconcileServer
import ReconcileSystem
import ServiceLifecycle

extension LineLogHandler.Format: ExpressibleByArgument {}

extension Reconcile {
    /// `reconcile watch`: apply, kept running. Heals drift within seconds of an engine event,
    /// re-reads the files every interval (and with `--git-pull` fetches them first), serves
    /// metrics and a status page.
    struct Watch: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep applying: at start, every interval, and within seconds of a container dying or going.",
            discussion: """
                Runs the same reconcile as apply for each environment: at start, every --interval, and \
                soon after an engine event on its live container (die, stop, kill, destroy, unhealthy, \
                renamed away). A revision that failed is not retried until the file changes (apply \
                --retry tries it). Stops on SIGTERM or SIGINT after the current step (never half a \
                deploy), exit 0; SIGHUP too.
                """)

        @OptionGroup var paths: PathArguments

        @Option(help: "How often every environment is reconciled and the files read again (1s to 24h).")
        var interval: String = "60s"

        @Flag(help: "Before each interval's pass, fetch the checkout's upstream and fast-forward to it.")
        var gitPull = false

        @Option(help: "Serve /metrics, /healthz and a status page on HOST:PORT, or on 127.0.0.1:PORT for a port.")
        var listen: String?

        @Option(help: "Log lines as text or json.")
        var logFormat: LineLogHandler.Format = .text

        @Flag(help: "Apply environments with approval: required too (otherwise they are skipped, said once).")
        var approve = false

        @OptionGroup var deploy: DeployOptions

        func validate() throws {
            guard let value = Quantities.duration(interval), value >= .seconds(1), value <= .seconds(86400) else {
                throw ValidationError(
                    "--interval expects a duration from 1s to 24h, like 30s or 5m, got \"\(interval)\"")
            }
            if let listen, Self.address(listen) == nil {
                throw ValidationError(
                    "--listen expects HOST:PORT or a port (on 127.0.0.1), like 127.0.0.1:9464, got \"\(listen)\"")
            }
        }

        /// `HOST:PORT`, `[v6]:PORT`, or a bare port on loopback.
        static func address(_ text: String) -> (host: String, port: Int)? {
            if let port = Int(text), (0...65535).contains(port) { return ("127.0.0.1", port) }
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return host.isEmpty ? nil : (host, port)
        }

        func execute(_ context: CommandContext) async -> Int32 {
            let store: FileStateStore
            let key: [UInt8]?
            do {
                _ = try EnvironmentLoader.files(paths.paths)
                store = try FileStateStore(path: StateDirectory.path(deploy.stateDir, environment: context.environment))
                key = try store.fingerprintKey(create: true)
            } catch {
                return report(error, context)
            }
            let output = context.output
            let logger = Logger(label: "reconcile") { _ in
                LineLogHandler(format: logFormat, now: context.now) { output.write($0) }
            }
            let metrics = WatchMetrics()
            let session = WatchSession(
                paths: paths.paths, store: store, key: key, context: context, logger: logger, metrics: metrics,
                approve: approve, lockTimeout: deploy.timeout)
            // The engine: the one the files name (one watch follows one engine).
            let targets = session.engines()
            guard targets.count <= 1 else {
                let names = targets.map { $0?.description ?? "the default engine" }.joined(separator: ", ")
                context.warn(
                    "reconcile: error: these files name \(targets.count) engines (\(names)); one watch follows one "
                        + "engine: run a watch for each, with the files of that engine")
                return ExitCodes.failure
            }
            session.target.withLock { $0 = targets.first ?? nil }
            let watcher = Watcher(
                configuration: .init(interval: Quantities.duration(interval) ?? .seconds(60)),
                hooks: session.hooks(gitPull: gitPull), clock: SystemClock())

            // Shut down in reverse order: the loop first (it finishes its step), the server last,
            // so that /metrics and /healthz answer until the loop has stopped.
            var services: [any Service] = []
            if let listen, let (host, port) = Self.address(listen) {
                // Said before anything runs, as one line, rather than after the first pass.
                if let problem = SocketHostPorts.bindProblem(host: host, port: port) {
                    context.warn("reconcile: error: cannot listen on \(listen): \(problem)")
                    return ExitCodes.failure
                }
                let server = StatusServer(
                    host: host, port: port, metrics: { metrics.exposition() },
                    healthy: { watcher.engineReachable && !watcher.isStopping },
                    page: { await session.page(engineReachable: watcher.engineReachable) },
                    listening: { logger.info("serving /metrics, /healthz and / on \(host):\($0)") })
                services.append(
                    server.service(logger: Logger(label: "reconcile-http") { _ in SwiftLogNoOpLogHandler() }))
            }
            services.append(WatchService(watcher: watcher))
            // The loop ending (stopped by a signal) ends the group gracefully, the HTTP server with it.
            let group = ServiceGroup(
                configuration: .init(
                    services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                    gracefulShutdownSignals: [], cancellationSignals: [],
                    logger: Logger(label: "reconcile-services") { _ in SwiftLogNoOpLogHandler() }))
            let interruption = Interruption { message in logger.notice("\(message)") }
            // The group's graceful shutdown stops the loop (WatchService); stopping it here as well
            // would end it while the group shuts another service down, which the group takes for
            // a failure.
            interruption.onSignal = { Task { await group.triggerGracefulShutdown() } }
            interruption.install()
            defer { interruption.uninstall() }
            logger.info(
                "watching \(paths.paths.isEmpty ? "environments/" : paths.paths.joined(separator: " ")) every \(interval)"
            )
            do {
                try await group.run()
            } catch {
                logger.error("\(error)")
                return ExitCodes.failure
            }
            logger.info("stopped")
            return ExitCodes.success
        }
    }
}

/// The watch loop as a service: it runs until the group shuts down gracefully, then lets the
/// current reconcile finish.
struct WatchService: Service {
    let watcher: Watcher

    func run() async throws {
        // The group cancels it when another service fails (the HTTP server cannot listen).
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await watcher.run()
            } onGracefulShutdown: {
                watcher.stop()
            }
        } onCancel: {
            watcher.stop()
        }
    }
}

/// What one `watch` process keeps: the files to read, the state directory, the log and metrics.
struct WatchSession: Sendable {
    let paths: [String]
    let store: FileStateStore
    let key: [UInt8]?
    let context: CommandContext
    let logger: Logger
    let metrics: WatchMetrics
    let approve: Bool
    let lockTimeout: Duration
    /// Specs read at the last pass, for the status page.
    private let last = Locked([EnvironmentSpec]())
    private let problems = Locked([String: String]())
    /// The last outcome said per environment: a skip that repeats every pass is said once.
    private let said = Locked([String: String]())
    /// One notifier for the process: a webhook that keeps failing is said once, not per deploy.
    private let notifier: WebhookNotifier
    /// The look shared by an interval pass's environments (taken by the first, dropped when the next pass begins).
    private let shared = Locked<HostState?>(nil)
    /// Inspections the shared looks keep while nothing changes (`InspectionCache`).
    let inspections = InspectionCache()
    /// Files read before, by path: their identity (inode, size, time) and what they held.
    private let parsed = Locked([String: (stamp: [Int], specs: [EnvironmentSpec])]())
    /// The one engine this watch follows (the files' `engine:`, chosen at start).
    let target = Locked<EngineTarget?>(nil)

    init(
        paths: [String], store: FileStateStore, key: [UInt8]?, context: CommandContext, logger: Logger,
        metrics: WatchMetrics, approve: Bool, lockTimeout: Duration
    ) {
        self.paths = paths
        self.store = store
        self.key = key
        self.context = context
        self.logger = logger
        self.metrics = metrics
        self.approve = approve
        self.lockTimeout = lockTimeout
        notifier = WebhookNotifier(warn: { logger.warning("\($0)") })
    }

    func hooks(gitPull: Bool) -> Watcher.Hooks {
        let context = self.context
        let paths = self.paths
        var hooks = Watcher.Hooks(
            connect: {
                let engine = try await context.connectTo(self.target.withLock { $0 })
                do {
                    try await engine.ping()
                } catch {
                    await engine.shutdown()
                    throw error
                }
                return engine
            },
            load: { self.load() },
            reconcile: { engine, desired, stopping in await self.reconcile(engine, desired, stopping: stopping) },
            beforePass: {
                guard gitPull else { return }
                let folder = paths.first ?? "environments"
                if let line = await GitRevisionStore().pullFastForward(folder) { self.logger.notice("\(line)") }
            },
            report: { self.report($0) })
        hooks.inSyncOnInterval = { engine, desired in await self.inSync(engine, desired) }
        hooks.seen = { event in self.inspections.forget(event.containerID) }
        hooks.refresh = { desired in self.refresh(desired) }
        return hooks
    }

    /// An interval pass's answer for an environment in sync, from one look at the engine shared
    /// by the pass (one list of every container, not one per environment); nil when the
    /// environment needs the full reconcile (a change, a hold, an interrupted deploy, `pull: always`).
    func inSync(_ engine: any ContainerEngine, _ desired: DesiredEnvironment) async -> Reconciler.Result? {
        let spec = desired.spec
        guard spec.pull != .always, (try? store.hold(spec.containerName)) ?? nil == nil,
            (try? store.deployRecord(spec.containerName)) ?? nil == nil
        else { return nil }
        let now = ContinuousClock.now
        var host = shared.withLock { $0 }
        if host == nil {
            let specs = last.withLock { $0 }
            let proxies = ProxyFolders(stateDirectory: store.location)
            guard
                let looked = try? await Observer(
                    engine: engine, hostPorts: context.hostPorts, proxies: proxies, inspections: inspections
                ).observe(specs)
            else { return nil }
            shared.withLock { $0 = looked }
            host = looked
        }
        guard let host else { return nil }
        let plan = Differ.plan(desired, host: host)
        guard plan.action == .inSync, !plan.hasChanges, plan.lockedBy == nil else { return nil }
        return Reconciler.Result(outcome: .unchanged, plan: plan, seconds: (ContinuousClock.now - now).seconds)
    }

    /// The environment as its file says now (parsed again only when the file changed); nil when
    /// the file no longer validates or names it, or names another engine.
    func refresh(_ desired: DesiredEnvironment) -> DesiredEnvironment? {
        let followed = target.withLock { $0 }
        guard
            let spec = (try? cachedSpecs(desired.spec.file))?.first(where: {
                $0.containerName == desired.spec.containerName && $0.engine == followed
            })
        else { return nil }
        guard spec != desired.spec else { return desired }
        return Planning.desiredEnvironment(spec, key: key, context: context)
    }

    /// The engines the files that validate now name, in the files' order.
    func engines() -> [EngineTarget?] {
        var targets: [EngineTarget?] = []
        for file in (try? EnvironmentLoader.files(paths)) ?? [] {
            for spec in (try? cachedSpecs(file)) ?? [] where !targets.contains(spec.engine) {
                targets.append(spec.engine)
            }
        }
        return targets
    }

    /// Every file, each on its own: one that does not validate is reported, the others go on.
    func load() -> [Watcher.Loaded] {
        let files: [String]
        do {
            files = try EnvironmentLoader.files(paths)
        } catch {
            return [.invalid(file: paths.joined(separator: " "), problem: "\(error)")]
        }
        var loaded: [Watcher.Loaded] = []
        var specs: [EnvironmentSpec] = []
        for file in files {
            do {
                for spec in try cachedSpecs(file) {
                    specs.append(spec)
                    loaded.append(.environment(Planning.desiredEnvironment(spec, key: key, context: context)))
                }
            } catch let failure as ValidationFailure {
                loaded.append(
                    .invalid(file: file, problem: failure.issues.map(\.description).joined(separator: "; ")))
            } catch {
                loaded.append(.invalid(file: file, problem: "\(error)"))
            }
        }
        // Two files that name the same container cannot both be applied.
        let names = Dictionary(grouping: specs, by: \.containerName).filter { $0.value.count > 1 }
        if !names.isEmpty {
            loaded = loaded.map { item in
                guard case .environment(let desired) = item, let twins = names[desired.spec.containerName] else {
                    return item
                }
                return .invalid(
                    file: desired.spec.file,
                    problem: "container \(desired.spec.containerName) is also named by "
                        + twins.filter { $0.file != desired.spec.file }.map(\.file).joined(separator: ", "))
            }
        }
        // One watch follows one engine: a file that names another is left as it runs.
        let followed = target.withLock { $0 }
        loaded = loaded.map { item in
            guard case .environment(let desired) = item, desired.spec.engine != followed else { return item }
            let named = desired.spec.engine?.description ?? "the default engine"
            return .invalid(
                file: desired.spec.file,
                problem: "names \(named), and this watch follows \(followed?.description ?? "the default engine"); "
                    + "run one watch per engine")
        }
        last.withLock { $0 = specs.filter { $0.engine == followed } }
        return loaded
    }

    /// The specs of `file`, parsed again only when the file changed (inode, size or time).
    func cachedSpecs(_ file: String) throws -> [EnvironmentSpec] {
        var info = stat()
        guard stat(file, &info) == 0 else { return try EnvironmentLoader.load([file]).specs }
        let stamp = [
            Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec),
            Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec),
        ]
        if let known = parsed.withLock({ $0[file] }), known.stamp == stamp { return known.specs }
        let specs = try EnvironmentLoader.load([file]).specs
        parsed.withLock { $0[file] = (stamp, specs) }
        return specs
    }

    /// The reconcile of one environment, as `apply` runs it (holds included).
    func reconcile(
        _ engine: any ContainerEngine, _ desired: DesiredEnvironment, stopping: @escaping @Sendable () -> Bool
    )
        async -> Reconciler.Result
    {
        let spec = desired.spec
        let reporter = WatchReporter(logger: logger, metrics: metrics)
        var reconciler = Reconcile.Apply.reconciler(
            engine: engine, store: store, printer: reporter, context: context)
        reconciler.notifier = notifier
        reconciler.notifyInBackground = true
        var resolved = desired
        do {
            let held = try await HeldRevision.desired(spec, key: key, store: store, release: true, context: context)
            resolved = held.desired
        } catch {
            let outcome = DeployOutcome.refused("\(error); nothing was changed")
            return Reconciler.Result(outcome: outcome, plan: nil, seconds: 0)
        }
        var options = Reconciler.Options(
            approval: approve ? .approved : .none, lockTimeout: lockTimeout, cancelled: stopping)
        options.reclaimOwnLease = true
        let result = await reconciler.reconcile(resolved, options: options)
        metrics.notes(
            environment: spec.environment, held: (try? store.hold(spec.containerName)) != nil,
            failed: (try? store.failedDeploy(spec.containerName)) != nil)
        return result
    }

    func report(_ report: Watcher.Report) {
        switch report {
        case .engineUp:
            inspections.forgetAll()  // the engine may have restarted: nothing kept is known to hold
            metrics.engine(reachable: true)
            logger.info("engine reachable")
        case .engineDown(let reason):
            metrics.engine(reachable: false)
            logger.error("engine unreachable: \(reason); retrying with backoff")
        case .invalid(let file, let problem):
            problems.withLock { $0[file] = problem }
            logger.error("\(file) is not valid, left as it runs: \(problem)")
        case .valid(let file):
            problems.withLock { $0[file] = nil }
            logger.info("\(file) is valid again")
        case .removed(let environment, let file):
            problems.withLock { $0[file] = nil }
            if let environment {
                metrics.forget(environment: environment)
                said.withLock { $0[environment] = nil }
                logger.notice("\(environment): \(file) is gone; its containers are left as they run")
            }
        case .pass(let trigger):
            shared.withLock { $0 = nil }  // each pass looks afresh, once
            logger.debug("pass (\(trigger.rawValue))")
        case .event(let environment, let action):
            logger.info("\(environment): engine event \(action); reconciling")
        case .reconciled(let environment, _, let result, let trigger):
            let name = result.drift ? "drift-corrected" : result.outcome.name
            // A skip (known bad, approval) repeats every pass: said and counted once until it changes.
            let repeated = said.withLock { said in
                defer { said[environment] = name }
                return said[environment] == name
            }
            if case .skipped = result.outcome, repeated { return }
            metrics.reconciled(environment: environment, result: result, wallClock: context.now())
            switch result.outcome {
            case .unchanged:
                break
            default:
                let reason = result.outcome.reason.map { ": \($0)" } ?? ""
                let line =
                    "\(environment): \(name) (\(trigger.rawValue), \(DeployNotification.format(result.seconds)))\(reason)"
                if result.outcome.exitCode == ExitCodes.success {
                    logger.info("\(line)")
                } else {
                    logger.error("\(line)")
                }
            }
        case .stopping:
            logger.notice("stopping after the current step")
        }
    }

    /// The status page: what runs, the journal's last deploys, holds and failures.
    func page(engineReachable: Bool) async -> String {
        let specs = last.withLock { $0 }
        var statuses: [EnvironmentStatus] = []
        if engineReachable, let engine = try? await context.connectTo(target.withLock { $0 }) {
            statuses = (try? await EnvironmentStatus.read(specs, engine: engine)) ?? []
            await engine.shutdown()
        }
        var holds: [String: Hold] = [:]
        var failures: [String: FailedDeploy] = [:]
        for spec in specs {
            holds[spec.containerName] = (try? store.hold(spec.containerName)) ?? nil
            failures[spec.containerName] = (try? store.failedDeploy(spec.containerName)) ?? nil
        }
        let problems = self.problems.withLock { $0 }.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        return StatusPage(
            statuses: statuses, journal: (try? store.journal()) ?? [], holds: holds, failures: failures,
            problems: problems, engineReachable: engineReachable, now: context.now()
        ).html()
    }
}

/// A deploy's steps as log lines, and its gate's duration as a metric.
final class WatchReporter: DeployReporter, Sendable {
    let logger: Logger
    let metrics: WatchMetrics
    private let gateStarted = Locked([String: ContinuousClock.Instant]())

    init(logger: Logger, metrics: WatchMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    func plan(_ plan: EnvironmentPlan) {
        guard plan.hasChanges else { return }
        let changes = plan.changes.map { "\($0.field): \($0.old ?? "-") → \($0.new ?? "-")" }.joined(separator: ", ")
        let proxy = plan.proxy.map { "; proxy \($0.action.rawValue)" } ?? ""
        logger.info(
            "\(plan.environment): plan \(plan.action.rawValue)\(changes.isEmpty ? "" : " (\(changes))")\(proxy)")
    }

    func event(_ event: DeployEvent) {
        let line = "\(event.environment): \(event.step) \(event.message)"
        if event.ok { logger.info("\(line)") } else { logger.warning("\(line)") }
        let now = ContinuousClock.now
        switch event.step {
        case "start", "unpause", "check", "restart":
            gateStarted.withLock { $0[event.environment] = now }
        case "gate", "failed":
            if let started = gateStarted.withLock({ $0.removeValue(forKey: event.environment) }) {
                metrics.gate(environment: event.environment, duration: now - started, passed: event.step == "gate")
            }
        default:
            break
        }
    }
}
