/// Runs an operation with a deadline that covers all of it: the caller gets the result, or
/// `DeadlineExceeded` once `limit` has passed, whether or not the operation notices that it was
/// cancelled. A request whose server sends headers and then stalls its body, or an engine call
/// that never answers, can then never hold a deploy (and the running version) hostage.
///
/// An operation that ignores cancellation keeps running in the background after the deadline;
/// its result is dropped.
public enum Deadline {
    /// - Parameter cancelled: polled every 100 ms; once true, the caller gets `CancellationError`.
    public static func run<T: Sendable>(
        _ limit: Duration, cancelled: (@Sendable () -> Bool)? = nil,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation, limit: limit, cancelled: cancelled, operation)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The first of the operation, the timer and the caller's cancellation to finish resumes the
    /// caller; the others are cancelled.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, Error>?
            var tasks: [Task<Void, Never>] = []
            var result: Result<T, Error>?
        }
        private let state = Locked(State())

        func start(
            _ continuation: CheckedContinuation<T, Error>, limit: Duration, cancelled: (@Sendable () -> Bool)?,
            _ operation: @escaping @Sendable () async throws -> T
        ) {
            let early = state.withLock { state -> Result<T, Error>? in
                if let result = state.result { return result }
                state.continuation = continuation
                return nil
            }
            // Cancelled before it began.
            if let early {
                continuation.resume(with: early)
                return
            }
            let work = Task {
                do {
                    self.finish(.success(try await operation()))
                } catch {
                    self.finish(.failure(error))
                }
            }
            let timer = Task {
                do {
                    if let cancelled {
                        let end = ContinuousClock.now + limit
                        while ContinuousClock.now < end {
                            if cancelled() {
                                self.finish(.failure(CancellationError()))
                                return
                            }
                            try await Task.sleep(for: min(.milliseconds(100), end - ContinuousClock.now))
                        }
                    } else {
                        try await Task.sleep(for: limit)
                    }
                    self.finish(.failure(DeadlineExceeded(limit: limit)))
                } catch {}
            }
            let late = state.withLock { state -> Bool in
                state.tasks = [work, timer]
                return state.continuation == nil
            }
            if late {
                work.cancel()
                timer.cancel()
            }
        }

        func finish(_ result: Result<T, Error>) {
            let (continuation, tasks) = state.withLock {
                state -> (CheckedContinuation<T, Error>?, [Task<Void, Never>]) in
                guard state.result == nil else { return (nil, []) }
                state.result = result
                defer {
                    state.continuation = nil
                    state.tasks = []
                }
                return (state.continuation, state.tasks)
            }
            for task in tasks { task.cancel() }
            continuation?.resume(with: result)
        }
    }
}

/// An operation ran past its deadline.
public struct DeadlineExceeded: Error, Sendable, Equatable, CustomStringConvertible {
    public var limit: Duration

    public init(limit: Duration) { self.limit = limit }

    public var description: String { "no answer within \(Quantities.format(limit))" }
}
