import Foundation
import Placement

/// The cluster state's store: classes, devices, every epoch of the cluster map, shard
/// locations, movement, volumes and snapshots, the object index, shared-object holders,
/// PGs to recover. Two implementations with the same schema and invariants: SQLite
/// (`ClusterDatabase`, the embedded default) and PostgreSQL (`MetadataPostgres`), chosen
/// by the daemon's `--metadata URL` (`MetadataLocation`). Each call is one transaction.
public protocol ClusterStore: AnyObject, Sendable {
    /// Several changes in one transaction: all or nothing.
    func commit(_ changes: [ClusterChange]) throws

    // Reads of the cluster state.
    func classes() throws -> [StorageClassRecord]
    func devices() throws -> [DeviceRecord]
    /// Devices in maintenance: (device, started, until) in wall-clock milliseconds.
    func maintenance() throws -> [(device: String, startedMs: Int64, untilMs: Int64?)]
    /// The states the health check set, by device (`ClusterChange.setHealthMark`).
    func healthMarks() throws -> [String: String]
    /// The newest cluster map, or nil before the first epoch.
    func latestMap() throws -> ClusterMap?
    func epochs() throws -> [UInt64]
    /// Per PG of the pool, the devices holding each position's shards.
    func locations(poolID: UInt32) throws -> [[DeviceID]]
    func cleanups() throws -> [CleanupRecord]
    func latestMovement() throws -> MovementRecord?
    /// Adds progress to a movement burst; marks it finished when told.
    func recordProgress(epoch: Int64, positions: Int64, bytes: Int64, finished: Bool) throws
    /// Moves the shard location of one position and queues the old device for cleanup, in
    /// one transaction; fails if the position is not at `from`.
    func switchLocation(poolID: UInt32, pg: Int, position: Int, from: DeviceID, to: DeviceID, movedBytes: Int64, epoch: Int64) throws

    // Volumes and snapshots.
    func volumes() throws -> [VolumeRecord]
    /// Available volumes with an id after `after` (all if nil), by id, at most `limit`.
    func volumes(after: String?, limit: Int?) throws -> [VolumeRecord]
    /// Volumes per class (any state; snapshots not counted).
    func volumeCounts() throws -> [String: Int]
    func volume(id: String) throws -> VolumeRecord?
    /// The volume (not snapshot) named `name`, in any state.
    func volume(named name: String) throws -> VolumeRecord?
    func snapshot(named name: String) throws -> VolumeRecord?
    func snapshots(after: String?, limit: Int?, sourceVolume: String?) throws -> [VolumeRecord]

    // The object index (`ObjectIndex.swift` has the rules).
    func applyIndex(_ changes: [ObjectIndexChange]) throws
    func replaceIndex(volumeID: String, objects: [IndexedObject], usage: VolumeUsageRecord?, keepInUse: Bool) throws
    func indexedObjects(poolID: UInt32, pg: Int) throws -> [IndexedObject]
    func indexedObject(id: String) throws -> IndexedObject?
    func positionBytes(poolID: UInt32) throws -> [Int: Int64]
    func poolHasObjects(poolID: UInt32) throws -> Bool
    func indexedObjectCount(poolID: UInt32, pgs: Set<Int>) throws -> Int
    func markInUse(volumeID: String) throws
    func volumesInUse() throws -> [String]
    func usages() throws -> [VolumeUsageRecord]

    // Shared objects (`ObjectHolders.swift` has the rules).
    func finishCopy(_ record: VolumeRecord, sharing objects: [String], with sourceID: String, usage: VolumeUsageRecord,
                    copyData: Bool) throws
    func cloneCopies() throws -> [String]
    func finishCloneCopy(volumeID: String) throws
    func sharingHolders() throws -> Set<String>
    func release(_ objects: [String], holder: String) throws -> Set<String>
    func deleteHolder(id: String) throws
    func sharedCorrection(poolID: UInt32) throws -> (shardBytes: Int64, sizeBytes: Int64)

    // PGs to recover (`PGRecovery.swift` has the rules).
    func markForRecovery(poolID: UInt32, pg: Int) throws
    func pgsNeedingRecovery() throws -> [(poolID: UInt32, pg: Int, generation: Int64)]
    @discardableResult
    func clearRecovery(poolID: UInt32, pg: Int, generation: Int64?) throws -> Bool

    /// Where volumes' namespaces are kept beyond the node that mounts them, under leases
    /// (nil: each volume's database on its node is the only copy, as in the embedded default).
    var namespaceStore: (any NamespaceStore)? { get }
}

extension ClusterStore {
    public var namespaceStore: (any NamespaceStore)? { nil }

    public func finishCopy(_ record: VolumeRecord, sharing objects: [String], with sourceID: String, usage: VolumeUsageRecord) throws {
        try finishCopy(record, sharing: objects, with: sourceID, usage: usage, copyData: false)
    }

    @discardableResult
    public func clearRecovery(poolID: UInt32, pg: Int) throws -> Bool { try clearRecovery(poolID: poolID, pg: pg, generation: nil) }
}

/// One change to the cluster state (applied by `commit`).
public enum ClusterChange: Sendable {
    case saveClass(StorageClassRecord)
    case deleteClass(name: String)
    case saveDevice(DeviceRecord)
    case deleteDevice(id: String)
    case insertMap(ClusterMap)
    case setLocations(poolID: UInt32, table: PlacementTable)
    case setLocation(ShardLocationRecord)
    case addCleanup(CleanupRecord)
    case removeCleanup(CleanupRecord)
    case startMovement(MovementRecord)
    case saveVolume(VolumeRecord)
    case deleteVolume(id: String)
    case saveUsage(VolumeUsageRecord)
    /// The volume is closed and its index and usage up to date (`volume_in_use`).
    case clearInUse(volumeID: String)
    /// The state the health check set on a device (`down`, `out`), or nil: none (it is
    /// up again, or an admin set its state).
    case setHealthMark(device: String, state: String?)
    /// A device goes into maintenance (until `untilMs`, wall clock; nil: until stopped)…
    case startMaintenance(device: String, startedMs: Int64, untilMs: Int64?)
    /// … or comes out of it.
    case endMaintenance(device: String)
}
