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
/// Serial queues: libdispatch gives each custom serial queue a thread of its
/// overcommitting pool, while custom concurrent queues share the CPU-sized pool that
/// blocked callers can exhaust. A job enqueued from a lane stays on that lane (the thread
/// is awake and runs it next; another lane's thread would have to be woken, 30–150 µs on
/// this machine kind); one from elsewhere (an event loop, a timer) takes the lanes in turn.
public final class AgentExecutor: TaskExecutor {
    public static let shared = AgentExecutor(lanes: 8)

    private let queues: [DispatchQueue]
    private let next = Atomic<Int>(0)
    private static let lane = DispatchSpecificKey<Int>()

    init(lanes: Int) {
        queues = (0..<max(1, lanes)).map { index in
            let queue = DispatchQueue(label: "berth.agent.executor.\(index)", qos: .userInitiated)
            queue.setSpecific(key: Self.lane, value: index)
            return queue
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        run(UnownedJob(job))
    }

    func run(_ job: UnownedJob) {
        let executor = asUnownedTaskExecutor()
        let lane: Int
        if let current = DispatchQueue.getSpecific(key: Self.lane), current < queues.count {
            lane = current
        } else {
            lane = next.add(1, ordering: .relaxed).newValue % queues.count
        }
        queues[lane].async { job.runSynchronously(on: executor) }
    }
}
