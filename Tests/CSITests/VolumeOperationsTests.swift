import AdminProtocol
import CSIProtocol
import Foundation
import GRPCCore
import Testing

/// CSI and the admin API share one volume-operations layer: its lock, its rules.
@Suite(.serialized) struct VolumeOperationsTests {
    /// Whether a filesystem is mounted at `path` (mountinfo read to its end: Foundation's
    /// `contents(atPath:)` stops at a proc file's first page).
    static func mounted(_ path: String) -> Bool {
        let table = String(decoding: FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        return table.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first.map(String.init) == path }
    }

    /// An admin delete racing a NodeStage of the same volume: one wins cleanly. Either the
    /// stage succeeds, the delete is refused (FAILED_PRECONDITION) and the volume is mounted
    /// and still there; or the delete succeeds, the stage finds no volume (NOT_FOUND) and
    /// nothing is mounted. Never a mount of a deleted volume.
    @Test func anAdminDeleteAndANodeStageOfOneVolumeDoNotInterleave() async throws {
        let daemon = try RunningDaemon()
        var outcomes: [String: Int] = [:]
        for round in 0..<6 {
            let staging = daemon.root + "/staging-\(round)"
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
            let id = try await daemon.controller { try await $0.createVolume(Requests.create("race-\(round)", parameters: Requests.single)).volume.volumeID }
            var delete = Berth_Admin_V1_NameRequest()
            delete.name = id
            // Both in flight together.
            async let staged = rpcError { try await daemon.node { try await $0.nodeStageVolume(Requests.stage(id, at: staging)) } }
            async let deleted = rpcError { try await daemon.admin { try await $0.deleteVolume(delete) } }
            let (stageError, deleteError) = await (staged, deleted)
            let exists = try await daemon.controller { c in
                var get = Csi_V1_ListVolumesRequest()
                get.maxEntries = 0
                return try await c.listVolumes(get).entries.contains { $0.volume.volumeID == id }
            }
            switch (stageError?.code, deleteError?.code) {
            case (nil, .failedPrecondition?):
                outcomes["stage won", default: 0] += 1
                #expect(exists && Self.mounted(staging), "round \(round): staged, but the volume is gone or unmounted")
                _ = try await daemon.node { try await $0.nodeUnstageVolume(Requests.unstage(id, at: staging)) }
                _ = try await daemon.admin { try await $0.deleteVolume(delete) }
            case (.notFound?, nil):
                outcomes["delete won", default: 0] += 1
                #expect(!exists && !Self.mounted(staging), "round \(round): deleted, but still listed or mounted")
            default:
                Issue.record("round \(round): stage \(stageError.map { "\($0.code): \($0.message)" } ?? "ok"), delete \(deleteError.map { "\($0.code): \($0.message)" } ?? "ok")")
            }
            #expect(!Self.mounted(staging) || exists)
        }
        #expect(outcomes.values.reduce(0, +) == 6, "\(outcomes)")
    }

    /// The admin API follows the class's expansion rule and the one name limit, as CSI does.
    @Test func theAdminAPIFollowsTheSameRules() async throws {
        let daemon = try RunningDaemon()
        var create = Berth_Admin_V1_CreateVolumeRequest()
        create.name = String(repeating: "n", count: 129)
        create.capacityBytes = 1 << 20
        await expect(.invalidArgument, "a 129-byte name") { try await daemon.admin { try await $0.createVolume(create) } }
        create.name = "fine"
        _ = try await daemon.admin { try await $0.createVolume(create) }
        await expect(.alreadyExists, "the same name again") { try await daemon.admin { try await $0.createVolume(create) } }
        var expand = Berth_Admin_V1_ExpandVolumeRequest()
        expand.id = "no-such-volume"
        expand.capacityBytes = 2 << 20
        await expect(.notFound) { try await daemon.admin { try await $0.expandVolume(expand) } }
    }
}
