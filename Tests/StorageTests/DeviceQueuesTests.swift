import Foundation
import Placement
import Synchronization
import Testing
@testable import Storage

/// `DeviceQueues.runOrdered`: a lone job runs on the caller's thread; a device that is busy
/// takes it after its work in hand, and other devices are not held up by it.
@Suite struct DeviceQueuesTests {
    static func thread() -> UInt { UInt(pthread_self()) }

    @Test func aJobForAnIdleDeviceRunsOnTheCallersThread() {
        let queues = DeviceQueues()
        let caller = Self.thread()
        #expect(queues.runOrdered("d") { Self.thread() } == caller)
        #expect(queues.runOrdered("d") { Self.thread() } == caller, "the first job left the device marked busy")
    }

    @Test func aBusyDeviceFinishesItsWorkFirstAndOtherDevicesDoNotWait() {
        let queues = DeviceQueues()
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let firstDone = Atomic(false)
        // A job on d's queue (two jobs are queued, not run inline) that holds d until released.
        let jobs: [(device: DeviceID, work: @Sendable () -> Void)] = [
            ("d", { started.signal(); release.wait(); firstDone.store(true, ordering: .sequentiallyConsistent) }),
            ("e", {}),
        ]
        Thread { _ = queues.run(jobs) }.start()  // threads of their own: the global queue may be slow to add one
        started.wait()
        // f is idle: its job runs here at once, with d still held.
        #expect(queues.runOrdered("f") { Self.thread() } == Self.thread())
        // d is busy: the job waits for the one in hand. Run inline, it would see it unfinished.
        let sawFirstDone = Mutex<Bool?>(nil)
        let waiting = DispatchSemaphore(value: 0)
        Thread {
            let saw = queues.runOrdered("d") { firstDone.load(ordering: .sequentiallyConsistent) }
            sawFirstDone.withLock { $0 = saw }
            waiting.signal()
        }.start()
        usleep(50_000)
        release.signal()
        waiting.wait()
        #expect(sawFirstDone.withLock { $0 } == true)
        // And d is idle again afterwards.
        #expect(queues.runOrdered("d") { Self.thread() } == Self.thread())
    }
}
