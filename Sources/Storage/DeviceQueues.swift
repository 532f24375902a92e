import Dispatch
import Placement
import Synchronization

/// One serial dispatch queue per device: the shards of one object go to their devices in
/// parallel, while each device sees its operations one at a time. (Custom queues target
/// libdispatch's overcommitting root queue, so a blocked fsync on one device does not hold
/// up the others, unlike `concurrentPerform`, which is capped at the core count.)
final class DeviceQueues: Sendable {
    private let queues: Mutex<[DeviceID: DispatchQueue]> = Mutex([:])

    private func queue(_ device: DeviceID) -> DispatchQueue {
        queues.withLock { q in
            if let existing = q[device] { return existing }
            let created = DispatchQueue(label: "berth.device.\(device.rawValue)")
            q[device] = created
            return created
        }
    }

    /// Runs each job on its device's queue and waits for all; results in job order.
    /// `meanwhile` runs on the calling thread while the jobs do (e.g. computing a checksum
    /// they wait for); without it a single job runs inline.
    func run<T: Sendable>(_ jobs: [(device: DeviceID, work: @Sendable () -> T)], meanwhile: (() -> Void)? = nil) -> [T] {
        if jobs.count == 1 && meanwhile == nil { return [jobs[0].work()] }
        let results = Mutex<[T?]>(Array(repeating: nil, count: jobs.count))
        let group = DispatchGroup()
        for (i, job) in jobs.enumerated() {
            queue(job.device).async(group: group) {
                let value = job.work()
                results.withLock { $0[i] = value }
            }
        }
        meanwhile?()
        group.wait()
        return results.withLock { $0.map { $0! } }
    }
}
