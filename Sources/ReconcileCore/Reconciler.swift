import Foundation

/// One reconcile of one environment, the same for `apply`, `rollback` and `watch`: look at the
/// engine, pull when needed, take the environment's lock, look again, recover an interrupted
/// deploy, plan, ask for approval on the plan that will run, deploy through the strategy, record.
///
/// Awaits only through protocols (engine, probe, clock, state store, process identity), so the
/// whole sequence runs against fakes in unit tests and against a real engine in integration tests.
public struct Reconciler: Sendable {
    public var engine: any ContainerEngine
    public var probe: any HealthProbe
    public var clock: any DeployClock
    public var wallClock: @Sendable () -> Date
    public var state: any StateStore
    public var identity: any ProcessIdentity
    public var hostPorts: (any HostPorts)?
    public var reporter: any DeployReporter
    /// Test hook: the process dies at the named step (see `StopStartStrategy.Step`).
    public var abortAt: String?
    /// Where `secrets_mode: file` writes secret files.
    public var secretFiles: (any SecretFileStore)?
    /// Reads the environment file's revision in git; nil records none.
    public var revisions: (any RevisionStore)?
    /// The blue-green proxies' folders and runtime API; nil refuses `strategy: blue-green`.
    public var proxies: (any ProxyRuntime)?
    /// Sends `notify.webhook` notifications; nil sends none.
    public var notifier: (any Notifier)?
    /// Where `notify.webhook: $NAME` is looked up (the process environment).
    public var variables: [String: String] = [:]
    /// Posts notifications without waiting for them (`watch`: a slow webhook must not delay the
    /// next heal of the same environment). `apply` waits, at most the notifier's timeout.
    public var notifyInBackground = false

    public init(
        engine: any ContainerEngine, probe: any HealthProbe, clock: any DeployClock,
        wallClock: @escaping @Sendable () -> Date = { Date() }, state: any StateStore, identity: any ProcessIdentity,
        hostPorts: (any HostPorts)? = nil, reporter: any DeployReporter, abortAt: String? = nil
    ) {
        self.engine = engine
        self.probe = probe
        self.clock = clock
        self.wallClock = wallClock
        self.state = state
        self.identity = identity
        self.hostPorts = hostPorts
        self.reporter = reporter
        self.abortAt = abortAt
    }

    /// How changes to an environment with `approval: required` are approved.
    public enum ApprovalMode: Sendable {
        /// `--approve`: approved.
        case approved
        /// Ask a person: the answer, or nil when there is nobody to ask (no terminal).
        case ask(@Sendable (_ question: String) -> Bool?)
        /// Nobody approves: such environments are skipped.
        case none
    }

    public struct Options: Sendable {
        public var approval: ApprovalMode
        public var lockTimeout: Duration
        /// Try a desired state again although it failed and was rolled back before (`--retry`).
        public var retry: Bool
        /// A lease of this very process is a leftover (`watch`, see `EngineLock.reclaimOwn`).
        public var reclaimOwnLease = false
        /// Polled at every point where stopping changes nothing (before the pull, while waiting
        /// for the lock, before the deploy); once a deploy has begun it runs to its end.
        public var cancelled: @Sendable () -> Bool

        public init(
            approval: ApprovalMode = .none, lockTimeout: Duration = .seconds(300), retry: Bool = false,
            cancelled: @escaping @Sendable () -> Bool = { false }
        ) {
            self.approval = approval
            self.lockTimeout = lockTimeout
            self.retry = retry
            self.cancelled = cancelled
        }
    }

    /// How one environment ended, with the plan that ran.
    public struct Result: Sendable {
        public var outcome: DeployOutcome
        public var plan: EnvironmentPlan?
        public var seconds: Double
        /// A convergence that put back what the file already said (the file did not change since
        /// it last converged): drift, corrected.
        public var drift = false

        public init(outcome: DeployOutcome, plan: EnvironmentPlan?, seconds: Double, drift: Bool = false) {
            self.outcome = outcome
            self.plan = plan
            self.seconds = seconds
            self.drift = drift
        }
    }

    public func reconcile(_ desired: DesiredEnvironment, options: Options) async -> Result {
        var desired = desired
        // On an engine elsewhere, the gate reaches the published port on that machine.
        if desired.spec.engineAddress == nil { desired.spec.engineAddress = engine.remoteAddress }
        let started = clock.now()
        var run = Run()
        let outcome = await self.run(desired, options: options, &run)
        let seconds = (clock.now() - started).seconds
        let drift = isDrift(desired, outcome: outcome, plan: run.plan)
        // A known-bad skip changes nothing and repeats every cron run: the failure is in the journal once.
        if outcome != .unchanged, outcome.name != "skipped-known-bad" {
            if run.revision == nil { run.revision = await revision(of: desired) }
            await record(desired, outcome: outcome, run: run, seconds: seconds)
            await notify(
                desired, result: drift ? "drift-corrected" : outcome.name, outcome: outcome, run: run, seconds: seconds)
        } else if outcome.name == "skipped-known-bad", desired.spec.webhook != nil,
            var failed = try? state.failedDeploy(desired.spec.containerName), failed.skipNotified != true
        {
            // Skipped every cron run or watch pass: the webhook hears of it once.
            await notify(desired, result: outcome.name, outcome: outcome, run: run, seconds: seconds)
            failed.skipNotified = true
            try? state.saveFailedDeploy(failed)
        }
        return Result(outcome: outcome, plan: run.plan, seconds: seconds, drift: drift)
    }

    /// True when a convergence restored what the file already said: the live container was only
    /// started again, or this content had converged before and the file is unchanged since.
    func isDrift(_ desired: DesiredEnvironment, outcome: DeployOutcome, plan: EnvironmentPlan?) -> Bool {
        guard case .converged = outcome, let plan, desired.pin == nil else { return false }
        if plan.action == .start { return true }
        guard plan.action == .create || plan.action == .replace, let digest = desired.spec.contentDigest,
            let last = (try? state.journal())?.last(where: {
                $0.environment == desired.spec.environment && $0.file == desired.spec.file && $0.result == "converged"
            })
        else { return false }
        return last.contentDigest == digest
    }

    /// True when the journal has this environment converged with this exact content and image
    /// (a tag that moved to another image is a new version, and may be a bad one).
    func convergedBefore(_ desired: DesiredEnvironment, imageID: String?) -> Bool {
        guard let digest = desired.spec.contentDigest, let imageID, let journal = try? state.journal() else {
            return false
        }
        return journal.contains {
            $0.environment == desired.spec.environment && $0.file == desired.spec.file && $0.contentDigest == digest
                && $0.newImageID == imageID && $0.result == "converged"
        }
    }

    /// Posts the outcome to the environment's webhook, when it has one and wants to hear of it.
    func notify(_ desired: DesiredEnvironment, result: String, outcome: DeployOutcome, run: Run, seconds: Double)
        async
    {
        let spec = desired.spec
        guard let notifier, let hook = spec.webhook, DeployNotification.results.contains(result) else { return }
        guard let url = WebhookURL.resolve(hook, environment: variables) else {
            say(spec, "notify", "\(hook) is not set (or not an http(s) URL); no notification sent", ok: false)
            return
        }
        let notification = DeployNotification(
            environment: spec.environment, service: spec.service, file: spec.file, result: result,
            revision: run.revision?.commit, oldImage: run.previous?.image, newImage: spec.image.description,
            failedCheck: outcome.reason, seconds: (seconds * 1000).rounded() / 1000)
        if notifyInBackground {
            Task { await notifier.send(notification, to: url) }
        } else {
            await notifier.send(notification, to: url)
        }
    }

    /// What one reconcile learnt on its way, for the journal.
    struct Run {
        var plan: EnvironmentPlan?
        var previous: ContainerSnapshot?
        var revision: FileRevision?
    }

    private func run(_ desired: DesiredEnvironment, options: Options, _ progress: inout Run) async -> DeployOutcome {
        let spec = desired.spec
        let observer = Observer(engine: engine, hostPorts: hostPorts, proxies: proxies)
        if options.cancelled() { return .interrupted("not started") }
        if spec.strategy == .blueGreen, let address = engine.remoteAddress {
            return .refused(
                "strategy: blue-green needs the engine on this machine (its proxy is configured through a folder "
                    + "here and checks containers at their network addresses), and this one is at \(address); "
                    + "use strategy: stop-first there; nothing was changed")
        }

        // 1. Look without the lock: an environment in sync needs no lock and changes nothing.
        var host: HostState
        var plan: EnvironmentPlan
        let record: DeployRecord?
        do {
            host = try await look(desired, observer)
            plan = Differ.plan(desired, host: host)
            record = try state.deployRecord(spec.containerName)
        } catch {
            return .refused("\(error)")
        }
        // A conflict is final here unless leftovers of an interrupted apply may explain it (a port
        // still held by its candidate): those are removed under the lock, and the plan made again.
        if plan.action == .conflict && !plan.prune.contains(where: \.leftover) {
            progress.plan = plan
            reporter.plan(plan)
            return .refused(plan.conflicts.joined(separator: " "))
        }
        var desired = desired
        if let pin = earlierBytes(desired, host: host) {
            desired.pin = pin
            say(
                spec, "pin",
                "this content ran before (\(pin.revision.count == 40 ? "revision \(pin.revision.prefix(12))" : pin.revision)): it runs the image it ran then "
                    + "(\(Differ.short(pin.id))), not what \(spec.image) points at now")
            do {
                host = try await look(desired, observer)
            } catch {
                return .refused("\(error)")
            }
            plan = Differ.plan(desired, host: host)
        }

        // 2. Pull before the lock: a pull changes nothing that runs. `always` asks the registry
        // every time; when the tag moved, the plan made afterwards replaces the container.
        if let refusal = await pullIfNeeded(desired, plan: plan, host: host, options: options) { return refusal }
        if spec.pull == .always {
            do {
                host = try await look(desired, observer)
            } catch {
                return .refused("\(error)")
            }
            plan = Differ.plan(desired, host: host)
        }
        if let knownBad = knownBad(desired, plan: plan, host: host, options: options) {
            progress.plan = plan
            reporter.plan(plan)
            return knownBad
        }
        if !plan.hasChanges && record == nil {
            progress.plan = plan
            reporter.plan(plan)
            return .unchanged
        }

        // 3. The lock, then look again: what another apply did meanwhile counts.
        var lock = EngineLock(engine: engine, identity: identity, clock: clock, wallClock: wallClock)
        lock.reclaimOwn = options.reclaimOwnLease
        let lease: EngineLock.Lease
        do {
            lease = try await lock.acquire(
                spec, ttl: spec.deployBound, timeout: options.lockTimeout,
                report: { event in self.lockEvent(event, spec: spec) }, cancelled: options.cancelled)
        } catch LockError.cancelled {
            return .interrupted("interrupted while waiting for the lock; nothing was changed")
        } catch {
            return .refused("\(error)")
        }
        let outcome = await locked(desired, options: options, lease: lease, &progress)
        do {
            try await lock.release(lease)
        } catch {
            say(
                spec, "lock", "could not remove the lock \(lease.name) (\(error)); the next apply recovers it",
                ok: false)
        }
        return outcome
    }

    /// Everything done while the lock is held.
    private func locked(
        _ desired: DesiredEnvironment, options: Options, lease: EngineLock.Lease, _ progress: inout Run
    ) async -> DeployOutcome {
        let spec = desired.spec
        let observer = Observer(engine: engine, hostPorts: hostPorts, proxies: proxies)
        var host: HostState
        var record: DeployRecord?
        do {
            host = try await look(desired, observer)
            record = try state.deployRecord(spec.containerName)
            if let running = record?.holder, running.pid != lease.holder.pid, identity.isAlive(running) == true {
                return .refused(
                    "another apply (\(running.summary)) is deploying this environment right now, although its lock is "
                        + "gone (removed by hand?); nothing was changed. Wait for it to finish")
            }
            if let interrupted = record, await recover(interrupted, spec: spec, host: host) {
                host = try await look(desired, observer)
                record = nil
            }
            // Leftovers of an interrupted apply go first, under the lock: they are ours and hold
            // nothing we need, but may hold the port.
            let leftovers = Differ.plan(desired, host: host).prune.filter(\.leftover)
            for item in leftovers {
                do {
                    try await engine.removeContainer(item.id, force: true)
                } catch {
                    return .refused(
                        "could not remove \(item.name), left over from an interrupted apply (\(error)); "
                            + "nothing else was changed. Remove it (docker rm -f \(item.name)) or try again")
                }
                if let folder = host.containers.first(where: { $0.id == item.id })?.labels[Labels.secretFolder] {
                    secretFiles?.remove(folder)
                }
                say(spec, "clean", "removed \(item.name), left over from an interrupted apply")
            }
            if !leftovers.isEmpty { host = try await look(desired, observer) }
        } catch {
            return .refused("\(error)")
        }
        var plan = Differ.plan(desired, host: host)
        plan.lockedBy = nil  // the lease seen is this apply's own
        progress.previous = plan.currentID.flatMap { id in host.containers.first { $0.id == id } }
        // The active container of an interrupted apply that never finished its gate is gated again.
        let unverifiedID = record?.gatingID.flatMap { $0 == plan.currentID ? $0 : nil }
        if plan.action == .inSync, unverifiedID != nil {
            plan.action = .start
            plan.changes = [
                FieldChange(field: "verified", old: "no (an earlier apply was interrupted)", new: "gate it")
            ]
        }
        progress.plan = plan
        reporter.plan(plan)
        guard plan.action != .conflict else { return .refused(plan.conflicts.joined(separator: " ")) }
        if let knownBad = knownBad(desired, plan: plan, host: host, options: options) { return knownBad }
        guard plan.hasChanges else {
            if record != nil { try? state.clearDeployRecord(spec.containerName) }
            return .unchanged
        }
        if let skip = approve(plan, spec: spec, mode: options.approval) { return skip }
        if plan.action != .inSync && !desired.missingSecrets.isEmpty {
            return .refused(
                "secret \(desired.missingSecrets.joined(separator: ", ")) not set (process environment or secrets_file); nothing was changed"
            )
        }
        if [.create, .replace].contains(plan.action), host.images[desired.imageKey] == nil {
            return .refused("image \(spec.image) is not on this host (removed since the pull?); nothing was changed")
        }
        if options.cancelled() { return .interrupted("interrupted before the deploy began; nothing was changed") }

        // The lease must still be ours: a lock removed by hand would let another apply in. An
        // engine that does not answer is said as such, not as a lock removed by hand.
        let leaseNow: ContainerSnapshot?
        do {
            leaseNow = try await engine.inspectContainer(lease.id)
        } catch {
            return .refused("\(error); nothing was changed")
        }
        guard leaseNow != nil else {
            return .refused(
                "the lock \(lease.name) was removed while this apply held it (docker rm?); nothing was changed. "
                    + "Run apply again")
        }
        var first = DeployRecord(
            container: spec.containerName, step: .begun, pid: lease.holder.pid,
            since: ContainerCreation.timestamp(wallClock()))
        first.holder = lease.holder
        let recorder = DeployRecorder(
            store: state, record: first, warn: { message in self.say(spec, "record", message, ok: false) })
        do {
            try recorder.begin()
        } catch {
            return .refused("\(error); nothing was changed")
        }
        progress.revision = await revision(of: desired)
        var context = DeployContext(
            engine: engine, probe: probe, clock: clock, reporter: reporter, recorder: recorder, wallClock: wallClock,
            revision: progress.revision, unverifiedID: unverifiedID, abortAt: abortAt, secretFiles: secretFiles,
            proxies: proxies)
        context.redactions = desired.redactions
        let strategy: any ReplaceStrategy
        if spec.platform == .swarm {
            strategy = SwarmStrategy()
        } else if spec.strategy == .blueGreen {
            strategy = BlueGreenStrategy()
        } else {
            strategy = StopStartStrategy()
        }
        let outcome = await strategy.deploy(desired, plan: plan, host: host, context: context)
        // Content that converged here before and fails now (drift being corrected while a database
        // is down) is tried again on the next run: watch keeps healing it.
        remember(
            outcome, desired: desired, host: host, revision: progress.revision,
            versionFailed: recorder.didVersionFail && (plan.action == .create || plan.action == .replace)
                && !convergedBefore(desired, imageID: host.images[desired.imageKey]?.id))
        await sweepSecretFolders(spec)
        do {
            try state.clearDeployRecord(spec.containerName)
        } catch {
            say(spec, "record", "could not clear the deploy's record (\(error))", ok: false)
        }
        return outcome
    }

    /// What the engine runs for this environment, with the pinned image (when there is one) among
    /// the images.
    func look(_ desired: DesiredEnvironment, _ observer: Observer) async throws -> HostState {
        var host = try await observer.observe([desired.spec])
        if let pin = desired.pin { host.images[pin.id] = try await engine.inspectImage(pin.id) }
        return host
    }

    /// When the file's content is one that converged here before but is not what the live container
    /// was made from (a `git revert`, a file put back), the image it ran then: re-applying earlier
    /// content runs the same bytes, not whatever its tag points at now.
    func earlierBytes(_ desired: DesiredEnvironment, host: HostState) -> ImagePin? {
        let spec = desired.spec
        guard desired.pin == nil, let digest = spec.contentDigest else { return nil }
        let live = host.containers.first { $0.name == spec.containerName }
        guard live?.labels[Labels.contentDigest] != digest, let journal = try? state.journal() else { return nil }
        guard
            let entry = journal.last(where: {
                $0.environment == spec.environment && $0.file == spec.file && $0.contentDigest == digest
                    && $0.result == "converged"
            }), let id = entry.newImageID, id != live?.imageID
        else { return nil }
        return ImagePin(id: id, digest: entry.newImageDigest, revision: entry.revision ?? "an earlier apply")
    }

    /// The skip when this exact desired state failed and was rolled back before (and `--retry`
    /// was not given); nil when it may be tried.
    func knownBad(_ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, options: Options)
        -> DeployOutcome?
    {
        let spec = desired.spec
        guard !options.retry, [.create, .replace].contains(plan.action),
            let failed = try? state.failedDeploy(spec.containerName),
            failed.identity == desired.deployIdentity(imageID: host.images[desired.imageKey]?.id)
        else { return nil }
        return .skipped(
            .knownBad,
            "\(failed.named) failed at \(failed.time) and was rolled back (\(failed.reason)); nothing was "
                + "changed. Change the file, or try it again with `reconcile apply --retry`")
    }

    /// Remembers a desired state that failed and was rolled back; forgets it once one converged.
    /// Only a new version (create, replace) that failed its own checks is a bad one: an engine
    /// that refuses to create or start a container (shutting down, out of disk) says nothing
    /// against the revision, and neither does a start of the container that ran before.
    private func remember(
        _ outcome: DeployOutcome, desired: DesiredEnvironment, host: HostState, revision: FileRevision?,
        versionFailed: Bool
    ) {
        let spec = desired.spec
        do {
            switch outcome {
            case .rolledBack(let failure, _), .rollbackFailed(let failure, _):
                guard versionFailed else { return }
                let identity = desired.deployIdentity(imageID: host.images[desired.imageKey]?.id)
                let reason = failure.count > 200 ? String(failure.prefix(197)) + "…" : failure
                try state.saveFailedDeploy(
                    FailedDeploy(
                        container: spec.containerName, identity: identity, revision: revision?.short ?? "unknown",
                        time: ContainerCreation.timestamp(wallClock()), reason: reason))
            case .converged:
                try state.clearFailedDeploy(spec.containerName)
            default:
                break
            }
        } catch {
            say(spec, "record", "could not record the outcome for later applies (\(error))", ok: false)
        }
    }

    /// The file's revision in git; a git that cannot be asked is reported once and the revision left unknown.
    func revision(of desired: DesiredEnvironment) async -> FileRevision? {
        if let revision = desired.revision { return revision }
        let spec = desired.spec
        guard let revisions else { return nil }
        do {
            return try await revisions.revision(of: spec.file)
        } catch {
            say(spec, "revision", "\(error)", ok: false)
            return nil
        }
    }

    /// Removes secret folders of this environment that no container uses any more (their container
    /// was removed by hand, or an apply was killed before it could remove them).
    func sweepSecretFolders(_ spec: EnvironmentSpec) async {
        guard spec.secretsMode == .file, spec.platform != .swarm, let secretFiles,
            let containers = try? await engine.containers()
        else {
            return
        }
        let used = Set(containers.compactMap { $0.labels[Labels.secretFolder] })
        for folder in secretFiles.folders(prefix: spec.candidateName + "-") where !used.contains(folder) {
            secretFiles.remove(folder)
        }
    }

    /// Finishes what an interrupted apply left, as far as its record and the engine agree: a
    /// candidate that passed its gate takes the active name. True when the engine was changed.
    func recover(_ record: DeployRecord, spec: EnvironmentSpec, host: HostState) async -> Bool {
        guard record.pid != 0 else { return false }
        say(
            spec, "recover",
            "an earlier apply (pid \(record.pid), since \(record.since)) was interrupted at step \"\(record.step.rawValue)\"; "
                + "continuing from what the engine shows")
        guard record.step == .verified, let candidateID = record.candidateID,
            let candidate = host.containers.first(where: { $0.id == candidateID }), candidate.state == .running,
            candidate.isManaged(service: spec.service, environment: spec.environment),
            !host.containers.contains(where: { $0.name == spec.containerName })
        else { return false }
        do {
            try await engine.renameContainer(candidateID, to: spec.containerName)
            say(
                spec, "recover",
                "\(candidate.name) (\(candidate.shortID)) had passed its gate; it is now \(spec.containerName)")
            try state.clearDeployRecord(spec.containerName)
            return true
        } catch {
            say(spec, "recover", "could not promote \(candidate.name): \(error)", ok: false)
            return false
        }
    }

    /// Nil when the plan may run; else why it is skipped.
    func approve(_ plan: EnvironmentPlan, spec: EnvironmentSpec, mode: ApprovalMode) -> DeployOutcome? {
        guard spec.approval == .required else { return nil }
        switch mode {
        case .approved:
            return nil
        case .none:
            let down = plan.action == .create || plan.action == .start ? "; nothing of it runs now" : ""
            return .skipped(.approval, "\(spec.environment) requires approval\(down); re-run with --approve")
        case .ask(let ask):
            switch ask("Apply the plan above to \(spec.environment)? [y/N] ") {
            case .some(true): return nil
            case .some(false): return .skipped(.declined, "you declined; nothing was changed")
            case .none:
                return .skipped(
                    .approval, "\(spec.environment) requires approval; re-run with --approve or answer on a terminal")
            }
        }
    }

    // MARK: - Pull

    /// Pulls per the pull policy; a failure refuses the deploy before anything running is touched.
    func pullIfNeeded(_ desired: DesiredEnvironment, plan: EnvironmentPlan, host: HostState, options: Options) async
        -> DeployOutcome?
    {
        let spec = desired.spec
        let present = host.images[desired.imageKey] != nil
        let needed = [.create, .replace].contains(plan.action)
        if let pin = desired.pin {
            // A pinned revision runs the bytes it ran: by id, else by registry digest, never the tag.
            guard needed && !present else { return nil }
            guard let digest = pin.digest else {
                return .refused(
                    "image \(spec.image) as revision \(pin.revision.prefix(12)) ran it (\(Differ.short(pin.id))) is no "
                        + "longer on this host and has no registry digest to pull it by; nothing was changed. Load "
                        + "that image again, or roll back to another revision")
            }
            return await pull(digest, spec: spec, options: options)
        }
        switch spec.pull {
        case .always:
            break
        case .missing where needed && !present:
            break
        case .never where needed && !present:
            return .refused("image \(spec.image) is not on this host and pull is never; nothing was changed")
        case .missing, .never:
            return nil
        }
        return await pull(spec.image.description, spec: spec, options: options)
    }

    /// Pulls `reference`, reporting progress; the refusal when it fails.
    func pull(_ reference: String, spec: EnvironmentSpec, options: Options) async -> DeployOutcome? {
        let started = clock.now()
        let tracker = Locked(PullTracker())
        let reporter = self.reporter
        let engine = self.engine
        do {
            try await Deadline.run(.seconds(86400), cancelled: options.cancelled) {
                try await engine.pull(reference) { line in
                    let (milestone, summary) = tracker.withLock { tracker in
                        (tracker.record(line), tracker.summary(of: reference))
                    }
                    reporter.pullProgress(environment: spec.environment, line: summary, milestone: milestone)
                }
            }
        } catch is CancellationError {
            return .interrupted("interrupted during the pull of \(reference); nothing was changed")
        } catch {
            return .refused("\(error); nothing was changed")
        }
        say(spec, "pull", "pulled \(reference)", since: started)
        return nil
    }

    // MARK: - Reporting

    private func lockEvent(_ event: EngineLock.Event, spec: EnvironmentSpec) {
        switch event {
        case .waiting(let holder):
            say(spec, "lock", "waiting for the lock: another apply holds it (\(holder.summary))")
        case .recovered(let holder, let reason):
            say(spec, "lock", "recovered a stale lock of \(holder.summary): \(reason)")
        }
    }

    private func say(
        _ spec: EnvironmentSpec, _ step: String, _ message: String, since: Duration? = nil, ok: Bool = true
    ) {
        reporter.event(
            DeployEvent(
                environment: spec.environment, step: step, message: message,
                seconds: since.map { (clock.now() - $0).seconds }, ok: ok))
    }

    /// Appends the journal entry; a journal that cannot be written is reported, never fatal.
    private func record(_ desired: DesiredEnvironment, outcome: DeployOutcome, run: Run, seconds: Double) async {
        let spec = desired.spec
        // The image this desired state runs: the pinned one for an earlier revision, else the tag's.
        let newImage = try? await engine.inspectImage(desired.imageKey)
        var entry = JournalEntry(
            time: ContainerCreation.timestamp(wallClock()), environment: spec.environment, file: spec.file,
            revision: run.revision?.commit, oldImage: run.previous?.image, oldImageID: run.previous?.imageID,
            newImage: spec.image.description, newImageID: newImage?.id, action: run.plan?.action.rawValue ?? "none",
            result: outcome.name, exitCode: outcome.exitCode, seconds: (seconds * 1000).rounded() / 1000,
            failedCheck: outcome.reason)
        if run.revision?.dirty == true { entry.dirty = true }
        entry.newImageDigest = newImage?.repoDigests.first
        entry.contentDigest = spec.contentDigest
        do {
            try state.appendJournal(entry)
        } catch {
            say(spec, "journal", "\(error) (the deploy itself is not affected)", ok: false)
        }
    }
}
