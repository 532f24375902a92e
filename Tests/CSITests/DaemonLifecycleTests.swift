import CSIProtocol
import Foundation
import GRPCCore
import Testing
@testable import VolumeDriver

/// One daemon per state directory, and the mover's pauses.
@Suite struct DaemonLifecycleTests {
    /// A second daemon on the same state directory exits at once, non-zero, naming the
    /// first one's pid; the first keeps serving.
    @Test func aSecondDaemonOnTheSameStateDirectoryIsRefused() async throws {
        let daemon = try RunningDaemon()
        let first = try #require(daemon.process?.processIdentifier)
        // Bounded: a second daemon that serves instead of failing is killed after 60 s.
        let (status, message) = try RunningDaemon.refusedStart(["--endpoint", "unix://" + daemon.root + "/csi2.sock", "--state-dir", daemon.stateDirectory,
                                                                "--admin-socket", daemon.root + "/admin2.sock", "--metrics-address", "off"])
        #expect(status != nil && status != 0, "a second daemon on the same state directory: status \(String(describing: status))")
        #expect(message.contains("pid \(first)"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: daemon.root + "/csi2.sock"))
        let probe = try await daemon.csi { identity, _, _ in try await identity.probe(Csi_V1_ProbeRequest()) }
        #expect(probe.ready.value)
        // The lock goes with the process: a restart on the same directory starts.
        try daemon.restart()
        #expect(daemon.process?.processIdentifier != first)
    }

    @Test func theMoverBacksOffOnRepeatedFailures() {
        var pause = MoverPause()
        #expect(pause.next(moved: 3, failed: true) == 0)
        #expect(pause.next(moved: 0, failed: false) == MoverPause.idleMs)
        let waits = (0..<10).map { _ in pause.next(moved: 0, failed: true) }
        #expect(waits == [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000])
        #expect(pause.next(moved: 1, failed: false) == 0)
        #expect(pause.next(moved: 0, failed: true) == 1_000)
    }

    @Test func nodeNumbersFollowTheNodeID() {
        #expect(NodeNumber.of("node-a") == NodeNumber.of("node-a"))
        let numbers = Set((0..<100).map { NodeNumber.of("worker-\($0)") })
        #expect(numbers.count >= 99)  // a collision among 100 is possible but rare; two would be suspicious
    }
}
