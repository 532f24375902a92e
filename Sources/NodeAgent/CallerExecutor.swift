import Dispatch
import Synchronization

/// Runs one async call from a blocking caller on the caller's own thread. The caller would
/// wait anyway; instead of waking a thread of `AgentExecutor` for every step of the call
/// (the gRPC client's deadline and stream tasks, each resumption when a reply arrives) and
/// then being woken itself, it runs those steps as they come. On this machine kind a
/// thread wake-up costs 30–150 µs (a halted vCPU), and a 4 KiB read took some ten of them
/// (docs/cluster.md, "The way a shard travels").
///
/// Only for calls that do not wait on the caller: a put whose stream waits for the
/// checksums the caller computes meanwhile stays on `AgentExecutor`.
final class CallerExecutor: TaskExecutor, @unchecked Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        /// Set when the call has finished: jobs enqueued later (a straggling child of the
        /// call, none in practice) go to `AgentExecutor`.
        var closed = false
    }
    private let queue = Mutex(Queue())
    /// One signal per job enqueued, and one when the call finishes.
    private let ready = DispatchSemaphore(value: 0)

    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let forward = queue.withLock { q -> Bool in
            if q.closed { return true }
            q.jobs.append(job)
            return false
        }
        if forward {
            AgentExecutor.shared.run(job)
        } else {
            ready.signal()
        }
    }

    /// Runs `work` to its end on this thread (and the event loop it talks to) and returns
    /// its result. Never call it from a task.
    static func run<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
        let executor = CallerExecutor()
        let box = Mutex<Result<T, any Error>?>(nil)
        Task(executorPreference: executor) {
            let result: Result<T, any Error>
            do { result = .success(try await work()) } catch { result = .failure(error) }
            box.withLock { $0 = result }
            executor.ready.signal()
        }
        let unowned = executor.asUnownedTaskExecutor()
        while true {
            executor.ready.wait()
            if let result = box.withLock({ $0 }) {
                let rest = executor.queue.withLock { q -> [UnownedJob] in
                    q.closed = true
                    defer { q.jobs = [] }
                    return q.jobs
                }
                for job in rest { AgentExecutor.shared.run(job) }
                return result
            }
            let job = executor.queue.withLock { q -> UnownedJob? in q.jobs.isEmpty ? nil : q.jobs.removeFirst() }
            job?.runSynchronously(on: unowned)
        }
    }
}
