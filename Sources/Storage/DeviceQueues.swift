import Dispatch
import Placement
import Synchronization

/// One serial dispatch queue per device: the shards of one object go to their devices in
/// parallel, while each device sees the operations handed to its queue one at a time. (Custom
/// queues target libdispatch's overcommitting root queue, so a blocked fsync on one device
/// does not hold up the others, unlike `concurrentPerform`, which is capped at the core count.)
final class DeviceQueues: Sendable {
    /// A device's queue, and how many jobs are queued or running for it (those run on a
    /// caller's thread by `runOrdered` included).
    private final class Lane: Sendable {
        let queue: DispatchQueue
        let load = Atomic<Int>(0)
        init(_ device: DeviceID) { queue = DispatchQueue(label: "berth.device.\(device.rawValue)") }
    }

    private let lanes: Mutex<[DeviceID: Lane]> = Mutex([:])

    private func lane(_ device: DeviceID) -> Lane {
        lanes.withLock { l in
            if let existing = l[device] { return existing }
            let created = Lane(device)
            l[device] = created
            return created
        }
    }

    /// Runs each job on its device's queue and waits for all; results in job order.
    /// `meanwhile` runs on the calling thread while the jobs do (e.g. computing a checksum
    /// they wait for); without it a single job runs inline.
    func run<T: Sendable>(_ jobs: [(device: DeviceID, work: @Sendable () -> T)], meanwhile: (() -> Void)? = nil) -> [T] {
        if jobs.count == 1 && meanwhile == nil { return [jobs[0].work()] }
        return enqueue(jobs, meanwhile: meanwhile)
    }

    /// Runs one job in its device's order: on the calling thread when nothing is queued or
    /// running for the device — no hand-off to the queue's thread and back, two wake-ups
    /// that cost a lone 4 MiB write ~10 % — and through the queue, after what is there,
    /// when the device is busy, so that concurrent writers still reach it one at a time.
    func runOrdered<T: Sendable>(_ device: DeviceID, _ work: @escaping @Sendable () -> T) -> T {
        let lane = lane(device)
        guard lane.load.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else {
            return enqueue([(device, work)], meanwhile: nil)[0]
        }
        defer { lane.load.subtract(1, ordering: .releasing) }
        return work()
    }

    private func enqueue<T: Sendable>(_ jobs: [(device: DeviceID, work: @Sendable () -> T)], meanwhile: (() -> Void)?) -> [T] {
        let results = Mutex<[T?]>(Array(repeating: nil, count: jobs.count))
        let group = DispatchGroup()
        for (i, job) in jobs.enumerated() {
            let lane = lane(job.device)
            lane.load.add(1, ordering: .relaxed)
            lane.queue.async(group: group) {
                let value = job.work()
                lane.load.subtract(1, ordering: .releasing)
                results.withLock { $0[i] = value }
            }
        }
        meanwhile?()
        group.wait()
        return results.withLock { $0.map { $0! } }
    }
}
