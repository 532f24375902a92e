import Dispatch
import Synchronization

/// Runs `job` for indexes `0..<count`, at most `width` at once (the calling thread is one
/// of them), and returns each index's result in order. For blocking work — writing objects
/// whose shards each wait for a device flush: each other worker runs on a serial queue of
/// its own, which libdispatch serves from its overcommitting pool, so blocked jobs do not
/// hold the others back (a concurrent queue, like `concurrentPerform`, gets only as many
/// threads as there are cores). Should no worker start, the calling thread does every job.
enum ParallelMap {
    static func run<T, E: Error>(_ count: Int, width: Int, _ job: (Int) throws(E) -> T) -> [Result<T, E>] {
        func one(_ i: Int) -> Result<T, E> {
            do throws(E) { return .success(try job(i)) } catch { return .failure(error) }
        }
        let workers = min(count, max(1, width))
        if workers <= 1 { return (0..<count).map(one) }
        let next = Atomic<Int>(0)
        let results = Mutex<[Int: Shared<Result<T, E>>]>([:])
        withoutActuallyEscaping(one) { one in
            let body = Shared(one)
            let work: @Sendable () -> Void = {
                while true {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < count else { return }
                    let result = Shared(body.value(i))
                    results.withLock { $0[i] = result }
                }
            }
            let group = DispatchGroup()
            for _ in 1..<workers { DispatchQueue(label: "berth.fs.parallel").async(group: group, execute: work) }
            work()
            group.wait()  // no job outlives the call: `one` does not escape
        }
        return results.withLock { all in (0..<count).map { all[$0]!.value } }
    }

    /// A value handed between the workers; `run` waits for all of them before returning.
    private struct Shared<V>: @unchecked Sendable {
        let value: V
        init(_ value: V) { self.value = value }
    }
}
