import Engine
import GRPCCore
import Metadata

/// The rules of a volume's lifecycle that CSI's Controller and Node services and the admin
/// API all follow, so that they cannot drift: one name limit (`RequestChecks.volumeName`),
/// one lock per volume id (an admin delete and a NodeStage of the same volume run one after
/// the other, never interleaved) and one per name (creation), the expansion rule
/// (`allowVolumeExpansion`, never shrink), the refusal to delete a volume mounted here,
/// and one mapping of errors to status codes (`Failures.map`).
public final class VolumeOperations: Sendable {
    let engine: Engine
    let mounts: NodeMounts
    let nodeID: String
    private let names = KeyedLock()
    private let volumes = KeyedLock()

    init(engine: Engine, mounts: NodeMounts, nodeID: String) {
        self.engine = engine
        self.mounts = mounts
        self.nodeID = nodeID
    }

    /// The available volume `id`, or NOT_FOUND (engine failures keep their own codes).
    func volume(_ id: String) throws -> VolumeRecord {
        let found: VolumeRecord?
        do { found = try engine.volume(id: id) } catch { throw Failures.map(error) }
        guard let record = found, record.state == .available else { throw Failures.notFound("no volume \"\(id.prefix(128))\"") }
        return record
    }

    /// Runs `body` holding the volume's lock (stage, publish and their undoing).
    public func withVolume<T: Sendable>(_ id: String, _ body: @Sendable () async throws -> T) async throws -> T {
        try await volumes.withLock(id, body)
    }

    /// Creates a volume named `name` (under the name's lock), or returns the one that exists
    /// if `reuse` accepts it (CSI's idempotent repeat; `reuse` throws ALREADY_EXISTS for an
    /// incompatible one). `className(create)` resolves the class: `create` false for a
    /// repeat (nil: the parameters name no class that exists), true for a new volume.
    /// `source`: a clone of that snapshot or volume (a volume mounted here is flushed first).
    public func create(name: String, capacityBytes: Int64, source: Engine.ContentSource? = nil,
                       className: @escaping @Sendable (_ create: Bool) throws -> String?,
                       reuse: @escaping @Sendable (_ existing: VolumeRecord, _ className: String?) throws -> Void) async throws -> VolumeRecord {
        try RequestChecks.volumeName(name)
        let (engine, mounts) = (engine, mounts)
        return try await names.withLock(name) {
            try await blocking { () throws -> VolumeRecord in
                do {
                    if let existing = try engine.volume(named: name) {
                        try reuse(existing, try className(false))
                        return existing
                    }
                    guard let resolved = try className(true) else { throw Failures.invalid("no storage class for volume \"\(name)\"") }
                    if case .volume(let id) = source { try mounts.sync(volumeID: id) }
                    return try engine.createVolume(name: name, className: resolved, capacityBytes: capacityBytes, source: source)
                } catch {
                    throw Failures.map(error)
                }
            }
        }
    }

    /// Deletes a volume and its data. An unknown id succeeds (deletion is idempotent); a
    /// volume staged or published on this node is refused with FAILED_PRECONDITION.
    public func delete(id: String) async throws {
        let (engine, mounts, nodeID) = (engine, mounts, nodeID)
        try await volumes.withLock(id) {
            if mounts.volumesInUse.contains(id) {
                throw RPCError(code: .failedPrecondition, message: "volume \(id) is still staged or published on node \(nodeID)")
            }
            try await blocking { do { try engine.deleteVolume(id: id) } catch { throw Failures.map(error) } }
        }
    }

    /// Takes a snapshot of a volume (flushed first if it is mounted here), or returns the one
    /// of that name if it is of the same volume (ALREADY_EXISTS if of another). Under the
    /// snapshot name's lock and the volume's.
    public func createSnapshot(name: String, sourceVolumeID: String) async throws -> VolumeRecord {
        try RequestChecks.volumeName(name)
        let (engine, mounts) = (engine, mounts)
        return try await names.withLock("snapshot/" + name) {
            try await self.volumes.withLock(sourceVolumeID) {
                try await blocking { () throws -> VolumeRecord in
                    do {
                        if let existing = try engine.snapshot(named: name), existing.state == .available,
                           existing.source(.volume) == sourceVolumeID { return existing }
                        try mounts.sync(volumeID: sourceVolumeID)
                        return try engine.createSnapshot(name: name, sourceVolumeID: sourceVolumeID)
                    } catch {
                        throw Failures.map(error)
                    }
                }
            }
        }
    }

    /// Deletes a snapshot and the objects only it holds. An unknown id succeeds.
    public func deleteSnapshot(id: String) async throws {
        let engine = engine
        try await volumes.withLock(id) {
            try await blocking { do { try engine.deleteSnapshot(id: id) } catch { throw Failures.map(error) } }
        }
    }

    /// Grows a volume to at least `requiredBytes` (0: as it is) within `limitBytes` (0: no
    /// limit). NOT_FOUND for an unknown volume, OUT_OF_RANGE if it is already larger than
    /// the limit (volumes never shrink), FAILED_PRECONDITION if its class does not allow
    /// expansion.
    public func expand(id: String, requiredBytes: Int64, limitBytes: Int64) async throws -> VolumeRecord {
        let engine = engine
        return try await volumes.withLock(id) {
            try await blocking { [self] () throws -> VolumeRecord in
                let record = try volume(id)
                do {
                    if limitBytes > 0 && record.capacityBytes > limitBytes {
                        throw RPCError(code: .outOfRange, message: "volume \(record.id) has \(record.capacityBytes) bytes; volumes do not shrink")
                    }
                    if let c = engine.storageClass(named: record.className), !c.allowVolumeExpansion, requiredBytes > record.capacityBytes {
                        throw RPCError(code: .failedPrecondition, message: "storage class \(c.name) does not allow volume expansion")
                    }
                    return try engine.expandVolume(id: record.id, capacityBytes: max(requiredBytes, record.capacityBytes))
                } catch {
                    throw Failures.map(error)
                }
            }
        }
    }
}
