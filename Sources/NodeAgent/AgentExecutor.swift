import Dispatch
import Synchronization

/// Where the cluster's gRPC work runs: threads of dispatch queues of its own, not Swift's
/// cooperative pool. The data path reaches other hosts from blocking callers (FUSE
/// threads, device queues, the mover) that wait for a task; on the cooperative pool, whose
/// one thread per CPU may all be held by blocking work elsewhere in the process, that task
/// could wait behind them for as long as they run (seen in the full test suite: agent
/// calls timed out after minutes). With this executor preferred by every agent task (and
/// inherited by their child tasks), a shard travels whatever the pool does.
///
/// Serial queues, used in turn: libdispatch gives each custom serial queue a thread of its
/// overcommitting pool, while custom concurrent queues share the CPU-sized pool that
/// blocked callers can exhaust.
public final class AgentExecutor: TaskExecutor {
    public static let shared = AgentExecutor(lanes: 8)

    private let queues: [DispatchQueue]
    private let next = Atomic<Int>(0)

    init(lanes: Int) {
        queues = (0..<max(1, lanes)).map { DispatchQueue(label: "berth.agent.executor.\($0)", qos: .userInitiated) }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        let lane = next.add(1, ordering: .relaxed).newValue % queues.count
        queues[lane].async { job.runSynchronously(on: executor) }
    }
}
