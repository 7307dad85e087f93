import Foundation

/// The loop of `reconcile watch`: every environment is reconciled at start, on the interval, and
/// soon after an engine event on its live container (or its proxy). Each environment has a worker
/// of its own: triggers that come while one reconcile runs are folded into one more, so one
/// environment is never reconciled twice at once, and a slow gate in one never delays another.
///
/// The reconcile of one environment is the caller's (`apply`'s `Reconciler`); the loop only
/// decides when. The engine is reached through `connect`, again with a capped backoff when its
/// event stream ends (the engine restarted or went away); every environment is reconciled once
/// it answers again. Files are read again on every pass: a file that stops validating is reported
/// once and left as it runs, and the others carry on.
public final class Watcher: Sendable {
    public struct Configuration: Sendable {
        public var interval: Duration
        /// How long a worker waits after an event before it reconciles (events come in bursts).
        public var debounce: Duration
        /// The first wait between connection attempts, doubled up to `maxBackoff`.
        public var backoff: Duration
        public var maxBackoff: Duration
        /// The first wait before an environment whose reconcile did not get through (refused, or
        /// a failure that was not its version's fault) is tried again; doubled up to `interval`.
        public var retry: Duration
        /// How many environments are reconciled at once: enough that a slow gate never holds up
        /// the others' healing, few enough that 40 environments starting together do not swamp
        /// the engine's socket.
        public var parallel: Int

        public init(
            interval: Duration = .seconds(60), debounce: Duration = .milliseconds(300),
            backoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(30), retry: Duration = .seconds(5),
            parallel: Int = 6
        ) {
            self.interval = interval
            self.debounce = debounce
            self.backoff = backoff
            self.maxBackoff = maxBackoff
            self.retry = retry
            self.parallel = max(1, parallel)
        }
    }

    /// One environment file as read for a pass.
    public enum Loaded: Sendable {
        case environment(DesiredEnvironment)
        /// The file cannot be used now: why, in one line.
        case invalid(file: String, problem: String)
    }

    /// Why a reconcile ran.
    public enum Trigger: String, Sendable {
        case start, interval, event, reconnect
        /// Again after a reconcile that did not get through.
        case retry
    }

    /// What the loop tells its caller (log lines, metrics).
    public enum Report: Sendable {
        case engineUp
        case engineDown(String)
        case invalid(file: String, problem: String)
        case valid(file: String)
        /// The file is gone (or no longer names the environment): watch lets it be.
        case removed(environment: String?, file: String)
        case pass(Trigger)
        case reconciled(environment: String, file: String, result: Reconciler.Result, trigger: Trigger)
        case event(environment: String, action: String)
        case stopping
    }

    public struct Hooks: Sendable {
        public var connect: @Sendable () async throws -> any ContainerEngine
        public var load: @Sendable () async -> [Loaded]
        /// Reconciles one environment; the closure tells it whether the watch is stopping.
        public var reconcile:
            @Sendable (any ContainerEngine, DesiredEnvironment, @escaping @Sendable () -> Bool) async ->
                Reconciler.Result
        /// Runs before each interval's pass (`--git-pull`).
        public var beforePass: @Sendable () async -> Void
        public var report: @Sendable (Report) -> Void
        /// For an interval pass: an answer from one look shared by the pass's environments, when
        /// it shows the environment in sync (nil: reconcile it). Events always reconcile in full.
        public var inSyncOnInterval:
            (@Sendable (any ContainerEngine, DesiredEnvironment) async -> Reconciler.Result?)? =
                nil
        /// Every container event the engine reports, routed or not (what it kept of a container
        /// is stale now).
        public var seen: (@Sendable (EngineEvent) -> Void)? = nil
        /// Reads the environment's file again before a reconcile between passes (an event, a
        /// retry): what it says now, or nil when it no longer validates or names the environment.
        /// Without it, such a reconcile would apply the file as the last pass read it, undoing a
        /// newer apply made by hand.
        public var refresh: (@Sendable (DesiredEnvironment) -> DesiredEnvironment?)? = nil

        public init(
            connect: @escaping @Sendable () async throws -> any ContainerEngine,
            load: @escaping @Sendable () async -> [Loaded],
            reconcile:
                @escaping @Sendable (any ContainerEngine, DesiredEnvironment, @escaping @Sendable () -> Bool) async ->
                Reconciler.Result,
            beforePass: @escaping @Sendable () async -> Void = {}, report: @escaping @Sendable (Report) -> Void
        ) {
            self.connect = connect
            self.load = load
            self.reconcile = reconcile
            self.beforePass = beforePass
            self.report = report
        }
    }

    private struct State {
        var engine: (any ContainerEngine)?
        var desired: [String: DesiredEnvironment] = [:]
        var workers: [String: (stream: AsyncStream<Trigger>.Continuation, task: Task<Void, Never>)] = [:]
        /// Per environment: the pending retry and the wait before the next one.
        var retries: [String: (task: Task<Void, Never>, wait: Duration)] = [:]
        var invalid: [String: String] = [:]
        var stopping = false
        var engineLost = false
        /// Reconciles running, and the workers waiting for a turn.
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let configuration: Configuration
    private let hooks: Hooks
    private let clock: any DeployClock
    private let state = Locked(State())
    /// The sleep between passes, which `stop()` and a lost engine cut short.
    private let nap = Locked<Task<Void, Never>?>(nil)

    public init(configuration: Configuration, hooks: Hooks, clock: any DeployClock) {
        self.configuration = configuration
        self.hooks = hooks
        self.clock = clock
    }

    /// Asks the loop to stop: no new reconcile begins, one in progress ends as apply's would on
    /// SIGTERM (a deploy that began runs to its end), then `run` returns.
    public func stop() {
        let first = state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        if first { hooks.report(.stopping) }
        wake()
    }

    /// Ends the sleep between passes early.
    private func wake() { nap.withLock { $0?.cancel() } }

    /// Sleeps for `duration`, or until `wake()`.
    private func sleep(_ duration: Duration) async {
        let clock = self.clock
        let task = Task<Void, Never> { _ = try? await clock.sleep(for: duration) }
        nap.withLock { $0 = task }
        // A wake that came just before the nap began must not be missed.
        if isStopping || state.withLock({ $0.engineLost }) { task.cancel() }
        await task.value
        nap.withLock { $0 = nil }
    }

    public var isStopping: Bool { state.withLock { $0.stopping } }

    /// True while an engine connection is up.
    public var engineReachable: Bool { state.withLock { $0.engine != nil && !$0.engineLost } }

    /// Runs until `stop()`.
    public func run() async {
        var trigger = Trigger.start
        var down = false
        while !isStopping {
            guard let engine = await connect(announced: down) else { break }
            down = false
            state.withLock {
                $0.engine = engine
                $0.engineLost = false
            }
            let events = Task { await self.follow(engine) }
            await pass(trigger)
            var last = clock.now()
            while !isStopping && !state.withLock({ $0.engineLost }) {
                // Asleep until the next pass: stop and a lost engine wake it.
                await sleep(max(.milliseconds(1), configuration.interval - (clock.now() - last)))
                if isStopping || state.withLock({ $0.engineLost }) { break }
                if clock.now() - last >= configuration.interval {
                    await hooks.beforePass()
                    await pass(.interval)
                    last = clock.now()
                }
            }
            events.cancel()
            state.withLock { $0.engine = nil }
            if !isStopping {
                hooks.report(.engineDown("the engine's event stream ended"))
                down = true
                await engine.shutdown()
            } else {
                await finishWorkers()
                await engine.shutdown()
            }
            trigger = .reconnect
        }
        await finishWorkers()
    }

    /// Connects, waiting `backoff` (doubling, capped) between attempts; nil once stopping. The
    /// engine going down is reported once (unless `announced` already), not once per attempt.
    private func connect(announced: Bool) async -> (any ContainerEngine)? {
        var wait = configuration.backoff
        var reported = announced
        while !isStopping {
            do {
                let engine = try await hooks.connect()
                hooks.report(.engineUp)
                return engine
            } catch {
                if isStopping || Task.isCancelled { return nil }
                if !reported { hooks.report(.engineDown("\(error)")) }
                reported = true
            }
            let until = clock.now() + wait
            while !isStopping && clock.now() < until { try? await clock.sleep(for: .milliseconds(100)) }
            wait = min(wait * 2, configuration.maxBackoff)
        }
        return nil
    }

    /// Follows the engine's events until the stream ends; then marks the engine lost.
    private func follow(_ engine: any ContainerEngine) async {
        do {
            for try await event in engine.events() {
                hooks.seen?(event)
                if let key = route(event) {
                    let name = state.withLock { $0.desired[key]?.spec.environment } ?? key
                    hooks.report(.event(environment: name, action: event.action))
                    trigger(key, .event)
                }
            }
        } catch {}
        if !Task.isCancelled {
            state.withLock { $0.engineLost = true }
            wake()
        }
    }

    /// The environment an event concerns: one that leaves the live container (or the proxy)
    /// not serving. Nil for everything else, the deploys' own steps on other names included.
    public func route(_ event: EngineEvent) -> String? {
        let actions: Set<String> = [
            "die", "stop", "kill", "destroy", "pause", "health_status: unhealthy", "rename", "update", "remove",
        ]
        guard actions.contains(event.action) else { return nil }
        return state.withLock { state in
            state.desired.first { _, desired in
                let spec = desired.spec
                // A Swarm service changed or removed by hand; its tasks' containers are Swarm's to heal.
                if event.isService || spec.platform == .swarm {
                    return event.isService && spec.platform == .swarm && event.name == spec.containerName
                }
                if event.action == "rename" { return event.oldName == spec.containerName }
                return event.name == spec.containerName || event.name == spec.proxyName
            }?.key
        }
    }

    /// Reads the files and triggers every environment.
    private func pass(_ trigger: Trigger) async {
        hooks.report(.pass(trigger))
        let loaded = await hooks.load()
        var keys: [String] = []
        for item in loaded {
            switch item {
            case .environment(let desired):
                let key = desired.spec.containerName
                keys.append(key)
                let wasInvalid = state.withLock { state -> Bool in
                    state.desired[key] = desired
                    return state.invalid.removeValue(forKey: desired.spec.file) != nil
                }
                if wasInvalid { hooks.report(.valid(file: desired.spec.file)) }
            case .invalid(let file, let problem):
                let changed = state.withLock { state -> Bool in
                    defer { state.invalid[file] = problem }
                    return state.invalid[file] != problem
                }
                if changed { hooks.report(.invalid(file: file, problem: problem)) }
            }
        }
        // Environments whose file is gone (not merely invalid: those keep their last good state).
        let invalidFiles = Set(
            loaded.compactMap { item -> String? in
                if case .invalid(let file, _) = item { return file }
                return nil
            })
        let present = Set(keys)
        let (gone, goneFiles) = state.withLock { state -> ([(String, DesiredEnvironment)], [String]) in
            let gone = state.desired.filter { !present.contains($0.key) && !invalidFiles.contains($0.value.spec.file) }
            for (key, _) in gone { state.desired[key] = nil }
            let goneFiles = state.invalid.keys.filter { !invalidFiles.contains($0) }
            for file in goneFiles { state.invalid[file] = nil }
            return (Array(gone), goneFiles)
        }
        for (key, desired) in gone {
            let worker = state.withLock { state in
                state.retries.removeValue(forKey: key)?.task.cancel()
                return state.workers.removeValue(forKey: key)
            }
            worker?.stream.finish()
            hooks.report(.removed(environment: desired.spec.environment, file: desired.spec.file))
        }
        for file in goneFiles where !gone.contains(where: { $0.1.spec.file == file }) {
            hooks.report(.removed(environment: nil, file: file))
        }
        for key in keys { self.trigger(key, trigger) }
    }

    /// Waits for a turn among `parallel` reconciles.
    private func enter() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.running < configuration.parallel {
                    state.running += 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Gives the turn to the next waiting worker.
    private func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }

    /// Wakes the environment's worker, making it first when needed.
    private func trigger(_ key: String, _ trigger: Trigger) {
        let continuation = state.withLock { state -> AsyncStream<Trigger>.Continuation? in
            guard !state.stopping else { return nil }
            if let worker = state.workers[key] { return worker.stream }
            let (stream, continuation) = AsyncStream<Trigger>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let task = Task { await self.work(key, stream) }
            state.workers[key] = (continuation, task)
            return continuation
        }
        continuation?.yield(trigger)
    }

    /// One environment's worker: one reconcile at a time, triggers folded while it runs.
    private func work(_ key: String, _ triggers: AsyncStream<Trigger>) async {
        for await trigger in triggers {
            if isStopping { break }
            if trigger == .event { try? await clock.sleep(for: configuration.debounce) }
            await enter()
            var (engine, desired) = state.withLock { ($0.engine, $0.desired[key]) }
            if [.event, .retry].contains(trigger), let refresh = hooks.refresh, let known = desired {
                desired = refresh(known)
                if let fresh = desired { state.withLock { $0.desired[key] = fresh } }
            }
            guard let engine, let desired, !isStopping else {
                leave()
                continue
            }
            var quick: Reconciler.Result?
            if trigger == .interval, let inSync = hooks.inSyncOnInterval { quick = await inSync(engine, desired) }
            let result: Reconciler.Result
            if let quick {
                result = quick
            } else {
                result = await hooks.reconcile(engine, desired) { [self] in isStopping }
            }
            leave()
            scheduleRetry(key, after: result.outcome)
            hooks.report(
                .reconciled(
                    environment: desired.spec.environment, file: desired.spec.file, result: result, trigger: trigger))
        }
    }

    /// Whether an outcome leaves the environment worth trying again soon rather than at the next
    /// interval: refused (the engine was restarting, a leftover would not go) or failed for a
    /// reason other than its version (a version that failed its own checks is known-bad, and the
    /// retry only says so, once).
    public static func wantsRetry(_ outcome: DeployOutcome) -> Bool {
        switch outcome {
        case .refused, .rolledBack, .rollbackFailed: return true
        case .unchanged, .converged, .skipped, .interrupted: return false
        }
    }

    /// After a reconcile: a retry with a doubling wait (capped at the interval) when the outcome
    /// wants one; any pending retry is dropped, and the wait starts over, when it does not.
    private func scheduleRetry(_ key: String, after outcome: DeployOutcome) {
        let again = Self.wantsRetry(outcome)
        state.withLock { state in
            let previous = state.retries.removeValue(forKey: key)
            previous?.task.cancel()
            guard again, !state.stopping else { return }
            let wait =
                previous.map { min($0.wait * 2, configuration.interval) }
                ?? min(configuration.retry, configuration.interval)
            let clock = self.clock
            let task = Task { [weak self] in
                guard (try? await clock.sleep(for: wait)) != nil else { return }
                self?.trigger(key, .retry)
            }
            state.retries[key] = (task, wait)
        }
    }

    /// Ends every worker after its current reconcile.
    private func finishWorkers() async {
        let workers = state.withLock { state in
            defer {
                state.workers = [:]
                for retry in state.retries.values { retry.task.cancel() }
                state.retries = [:]
            }
            return Array(state.workers.values)
        }
        for worker in workers { worker.stream.finish() }
        for worker in workers { await worker.task.value }
    }
}
