import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Issue 8, class 7: the lock is a lease on the engine, so it holds across state directories,
/// users, containers and machines; a lease whose holder is gone is recovered and reported.
struct EngineLockTests {
    let spec = Build.spec()
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func lock(_ engine: FakeEngine, _ identity: FakeIdentity, clock: ManualClock = ManualClock(), at time: Date? = nil)
        -> EngineLock
    {
        let when = time ?? now
        return EngineLock(engine: engine, identity: identity, clock: clock, wallClock: { when })
    }

    @Test func theFirstApplyTakesItImportingTheLeaseImageOnce() async throws {
        let engine = FakeEngine()
        let lease = try await lock(engine, FakeIdentity()).acquire(spec, ttl: .seconds(60), timeout: .zero)
        #expect(lease.name == "app-staging.lock")
        #expect(
            await engine.mutatingCalls == [
                "create app-staging.lock", "import reconcile-lease:1", "create app-staging.lock",
            ])
        let container = try #require(await engine.container(named: "app-staging.lock"))
        #expect(container.isLease)
        #expect(container.labels[Labels.managed] == nil, "a lease is not one of the environment's containers")
        try await lock(engine, FakeIdentity()).release(lease)
        #expect(await engine.container(named: "app-staging.lock") == nil)
    }

    @Test func aSecondApplyWaitsSaysSoOnceAndGivesUpNamingTheHolder() async throws {
        let engine = FakeEngine()
        let first = FakeIdentity(pid: 100)
        _ = try await lock(engine, first).acquire(spec, ttl: .seconds(600), timeout: .zero)
        let events = Locked<[EngineLock.Event]>([])
        let clock = ManualClock()
        await #expect {
            _ = try await lock(engine, FakeIdentity(pid: 200), clock: clock).acquire(
                spec, ttl: .seconds(60), timeout: .seconds(2), report: { event in events.withLock { $0.append(event) } }
            )
        } throws: { error in
            "\(error)".hasPrefix(
                "another apply holds the lock app-staging.lock (pid 100 on testhost since 2027-01-15T08:00:00Z, until 2027-01-15T08:10:00Z); waited 2s"
            )
        }
        #expect(events.withLock { $0.count } == 1)
        #expect(clock.now() >= .seconds(2))
    }

    @Test func aLeaseOfAGoneProcessIsRecovered() async throws {
        let engine = FakeEngine()
        let identity = FakeIdentity(pid: 100)
        _ = try await lock(engine, identity).acquire(spec, ttl: .seconds(600), timeout: .zero)
        identity.kill(100)
        let events = Locked<[EngineLock.Event]>([])
        let lease = try await lock(engine, identity).acquire(
            spec, ttl: .seconds(60), timeout: .zero, report: { event in events.withLock { $0.append(event) } })
        #expect(lease.holder.pid == 100)
        guard case .recovered(let holder, let reason) = events.withLock({ $0.first }) else {
            Issue.record("no recovery reported")
            return
        }
        #expect(holder.pid == 100)
        #expect(reason == "its process 100 on testhost is gone")
    }

    @Test func aLeaseOfThisVeryProcessIsReclaimedOnlyWhenAsked() async throws {
        let engine = FakeEngine()
        let identity = FakeIdentity(pid: 100)
        _ = try await lock(engine, identity).acquire(spec, ttl: .seconds(600), timeout: .zero)
        // apply (and an in-process test holding the lease) waits for it: a holder that runs.
        await #expect(throws: LockError.self) {
            _ = try await lock(engine, identity).acquire(spec, ttl: .seconds(60), timeout: .zero)
        }
        // watch reclaims it: one reconcile per environment at a time, so it is a leftover.
        var watching = lock(engine, identity)
        watching.reclaimOwn = true
        let events = Locked<[EngineLock.Event]>([])
        _ = try await watching.acquire(
            spec, ttl: .seconds(60), timeout: .zero, report: { event in events.withLock { $0.append(event) } })
        guard case .recovered(_, let reason) = events.withLock({ $0.first }) else {
            Issue.record("no recovery reported")
            return
        }
        #expect(reason.contains("this process's own"))
    }

    @Test func aLeaseFromAnotherMachineIsRecoveredOnlyOnceItsTimeIsUp() async throws {
        let engine = FakeEngine(images: [EngineLock.image: ImageSnapshot(id: "sha256:lease")])
        let elsewhere = LeaseHolder(
            pid: 7, host: "other", since: "2027-01-15T07:00:00Z", until: "2027-01-15T08:30:00Z", bootID: "boot-2")
        let creation = lock(engine, FakeIdentity()).creation(spec, holder: elsewhere)
        _ = try await engine.createContainer(creation)
        await #expect(throws: LockError.self) {
            _ = try await lock(engine, FakeIdentity()).acquire(spec, ttl: .seconds(60), timeout: .zero)
        }
        let later = now.addingTimeInterval(3600)
        let lease = try await lock(engine, FakeIdentity(), at: later).acquire(spec, ttl: .seconds(60), timeout: .zero)
        #expect(lease.holder.host == "testhost")
    }

    @Test func aContainerOfSomeoneElseUnderTheLockNameIsNotTouched() async throws {
        let engine = FakeEngine(containers: [Build.foreign(name: "app-staging.lock")])
        await #expect {
            _ = try await lock(engine, FakeIdentity()).acquire(spec, ttl: .seconds(60), timeout: .seconds(5))
        } throws: { error in
            "\(error)"
                == "a container named app-staging.lock (f0f0f0f0f0f0) that reconcile did not create holds the lock's name; remove or rename it"
        }
        #expect(await engine.container(named: "app-staging.lock") != nil)
    }

    @Test func waitingEndsAtOnceWhenCancelled() async throws {
        let engine = FakeEngine()
        _ = try await lock(engine, FakeIdentity(pid: 1)).acquire(spec, ttl: .seconds(600), timeout: .zero)
        await #expect(throws: LockError.cancelled) {
            _ = try await lock(engine, FakeIdentity(pid: 2)).acquire(
                spec, ttl: .seconds(60), timeout: .seconds(600), cancelled: { true })
        }
    }
}
