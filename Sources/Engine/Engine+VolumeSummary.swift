import Foundation
import Metadata
import Placement

/// One volume as an admin sees it: its record, how much of it is written, and where its
/// data sits (`provisionctl volume show`).
public struct VolumeSummary: Sendable, Codable, Hashable {
    public var volume: VolumeRecord
    /// Bytes of file data in the volume's namespace (0 for a volume never mounted).
    public var usedBytes: Int64
    public var files: Int64
    public var objects: Int
    public var objectBytes: Int64
    /// PGs that hold its objects, and the devices those PGs are on.
    public var pgs: Int
    public var devices: [String]
    /// Objects whose PG has a member that is down, out or unreachable: readable, with
    /// less redundancy than the class promises until recovery finishes.
    public var degradedObjects: Int
    /// Objects still in another class's pool: a clone of another class's data being copied
    /// into its own (0 once done).
    public var copyingObjects: Int
    /// With namespaces in the cluster's store: the node mounting the volume read-write, and
    /// its lease (nil: the embedded default, or never mounted).
    public var lease: LeaseSummary?

    public struct LeaseSummary: Sendable, Codable, Hashable {
        /// nil: released or broken, nobody holds it.
        public var holder: String?
        public var generation: Int64
        /// Seconds it runs without renewal (≤ 0: expired: any node may take it).
        public var remainingSeconds: Double

        enum CodingKeys: String, CodingKey {
            case holder, generation
            case remainingSeconds = "remaining_s"
        }
    }

    enum CodingKeys: String, CodingKey {
        case volume, files, objects, pgs, devices, lease
        case copyingObjects = "copying_objects"
        case usedBytes = "used_bytes"
        case objectBytes = "object_bytes"
        case degradedObjects = "degraded_objects"
    }
}

extension Engine {
    public func volumeSummary(id: String) throws(EngineError) -> VolumeSummary {
        guard let record = try EngineError.wrap({ try database.volume(id: id) }) else { throw .unknownVolume(id) }
        let entry = try classEntry(ofVolume: id)
        // Looking does not mount: the open database if the volume is mounted here, else this
        // node's copy for the call (with namespaces in the cluster's store, the figures are
        // those of the last time it was mounted here; `lease` says where it is now).
        let vdb = try temporaryVolumeDatabase(id)
        let usage = (try? vdb.usage()) ?? (bytes: 0, inodes: 0, entries: 0)
        // What the files' data takes (holes are free), as the volume's `df` shows it.
        let used = (try? vdb.allocatedBytes(chunkSize: Int64(entry.storageClass.chunkSizeBytes))) ?? usage.bytes
        let live = try EngineError.wrap { try vdb.objects(state: .live) }
        let s = state.withLock { $0 }
        let locations = s.locations[entry.poolID] ?? []
        var pgs = Set<Int>()
        for object in live where object.poolID == Int64(entry.poolID) { pgs.insert(Int(object.pg)) }
        var devices = Set<String>()
        for pg in pgs where pg < locations.count { for device in locations[pg] { devices.insert(device.rawValue) } }
        let degradedPGs = degradedPGs(s)[entry.poolID] ?? []
        return VolumeSummary(volume: record, usedBytes: used, files: max(0, usage.inodes - 1), objects: live.count,
                             objectBytes: live.reduce(0) { $0 + $1.sizeBytes }, pgs: pgs.count, devices: devices.sorted(),
                             degradedObjects: live.count { $0.poolID == Int64(entry.poolID) && degradedPGs.contains(Int($0.pg)) },
                             copyingObjects: live.count { $0.poolID != Int64(entry.poolID) },
                             lease: try EngineError.wrap { try database.namespaceStore?.lease(volumeID: id) }.map {
                                 VolumeSummary.LeaseSummary(holder: $0.holder, generation: $0.generation, remainingSeconds: ($0.remainingSeconds * 10).rounded() / 10)
                             })
    }

    /// Breaks a volume's lease (`provisionctl volume release`): the node holding it is fenced
    /// off at once (its next commit fails with EIO) and any node may mount the volume.
    /// Returns the node that held it. Only with namespaces in the cluster's store.
    public func releaseVolume(id: String) throws(EngineError) -> String? {
        guard try EngineError.wrap({ try database.volume(id: id) }) != nil else { throw .unknownVolume(id) }
        guard let store = database.namespaceStore else {
            throw .invalidArgument("volume \(id) has no lease: its namespace is this node's alone (the embedded default; leases come with --metadata postgres://…)")
        }
        return try EngineError.wrap { try store.breakLease(volumeID: id) }
    }
}
