import Dispatch

/// Where the cluster's gRPC work runs: threads of a dispatch queue of its own, not Swift's
/// cooperative pool. The data path reaches other hosts from blocking callers (FUSE
/// threads, device queues, the mover) that wait for a task; on the cooperative pool, whose
/// one thread per CPU may all be held by blocking work elsewhere in the process, that task
/// could wait behind them for as long as they run. With this executor preferred by every
/// agent task (and inherited by their child tasks), a shard travels whatever the pool does.
public final class AgentExecutor: TaskExecutor {
    public static let shared = AgentExecutor()

    /// A custom concurrent queue: libdispatch's overcommitting threads, made as needed.
    private let queue = DispatchQueue(label: "berth.agent.executor", qos: .userInitiated, attributes: .concurrent)

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
