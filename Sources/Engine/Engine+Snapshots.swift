import Foundation
import Metadata
import Storage

/// Snapshots and clones (docs/snapshots.md). A snapshot is a read-only copy of a volume's
/// namespace, a clone a writable one; both share every object of their source, so making
/// one copies metadata only. Objects that several namespaces hold are named in the cluster
/// database (`object_holder`); a namespace letting go of one deletes its shards only when
/// no other holds it (`letGo`).
extension Engine {
    /// What a new volume is made from.
    public enum ContentSource: Sendable, Hashable, CustomStringConvertible {
        case snapshot(String)
        case volume(String)

        /// The form kept in the volume's row (`source`).
        public var description: String {
            switch self {
            case .snapshot(let id): "snapshot:" + id
            case .volume(let id): "volume:" + id
            }
        }
    }

    public func snapshot(id: String) throws(EngineError) -> VolumeRecord? {
        try EngineError.wrap { try database.volume(id: id) }.flatMap { $0.kind == .snapshot ? $0 : nil }
    }

    public func snapshot(named name: String) throws(EngineError) -> VolumeRecord? {
        try EngineError.wrap { try database.snapshot(named: name) }
    }

    /// A page of available snapshots by id: those after `after`, at most `limit`, of one
    /// source volume if given.
    public func snapshots(after: String?, limit: Int?, sourceVolume: String? = nil) throws(EngineError) -> [VolumeRecord] {
        try EngineError.wrap { try database.snapshots(after: after, limit: limit, sourceVolume: sourceVolume) }
    }

    /// Takes a snapshot of a volume: everything its database has committed, which is all that
    /// was fsynced (a mounted volume's buffers are the filesystem's to flush first). Repeating
    /// a name with the same source returns the snapshot; with another, `alreadyExists`.
    public func createSnapshot(name: String, sourceVolumeID: String) throws(EngineError) -> VolumeRecord {
        guard !name.isEmpty, name.utf8.count <= 1024 else { throw .invalidArgument("snapshot name must be 1-1024 bytes") }
        if let existing = try snapshot(named: name) {
            guard existing.source(.volume) == sourceVolumeID else {
                throw .alreadyExists("a snapshot named \"\(name)\" exists, of volume \(existing.source(.volume) ?? "?"), not \(sourceVolumeID)")
            }
            guard existing.state == .available else { throw .busy("snapshot \"\(name)\" is being \(existing.state == .deleting ? "deleted" : "made")") }
            return existing
        }
        guard let source = try volume(id: sourceVolumeID), source.state == .available else { throw .unknownVolume(sourceVolumeID) }
        let record = VolumeRecord(id: Self.newID(prefix: "snap-"), name: name, className: source.className,
                                  capacityBytes: source.capacityBytes, state: .creating, createdMs: Engine.nowMs(),
                                  kind: .snapshot, source: ContentSource.volume(source.id).description)
        try EngineError.wrap { try database.commit([.saveVolume(record)]) }
        do {
            return try copyNamespace(from: source, into: record)
        } catch {
            abandonCopy(record)
            throw error
        }
    }

    /// Deletes a snapshot; the objects no one else holds go with it. Idempotent: an unknown
    /// id succeeds. Marked 'deleting' first, so a crash midway finishes at the next start.
    public func deleteSnapshot(id: String) throws(EngineError) {
        guard var record = try snapshot(id: id) else { return }
        if record.state == .creating { throw .busy("snapshot \(id) is being made") }
        if record.state != .deleting {
            record.state = .deleting
            try EngineError.wrap { try database.commit([.saveVolume(record)]) }
        }
        try deleteVolumeData(record)
    }

    /// The volume or snapshot a new volume is to be made from, checked against it: the new
    /// volume is at least its size. (In another class, its data is copied in the background:
    /// Engine+CloneCopy.)
    func cloneSource(_ source: ContentSource, className: String, capacityBytes: Int64) throws(EngineError) -> VolumeRecord {
        let record: VolumeRecord
        switch source {
        case .snapshot(let id):
            guard let found = try snapshot(id: id), found.state == .available else { throw .unknownSnapshot(id) }
            record = found
        case .volume(let id):
            guard let found = try volume(id: id), found.state == .available else { throw .unknownVolume(id) }
            record = found
        }
        guard capacityBytes >= record.capacityBytes else {
            throw .outOfRange("\(source) holds \(record.capacityBytes) bytes; a volume made from it needs at least as many (\(capacityBytes) asked)")
        }
        return record
    }

    /// Copies `source`'s database into `record` (committed as 'creating') and makes it
    /// available, sharing every object, in one transaction of the cluster database. Under
    /// the source's share lock, so none of its objects is let go while the copy is made.
    func copyNamespace(from source: VolumeRecord, into record: VolumeRecord) throws(EngineError) -> VolumeRecord {
        try shareLocks.withLock(source.id) { () throws(EngineError) -> VolumeRecord in
            guard let current = try EngineError.wrap({ try database.volume(id: source.id) }), current.state == .available else {
                throw source.kind == .snapshot ? .unknownSnapshot(source.id) : .unknownVolume(source.id)
            }
            guard let entry = state.withLock({ $0.classes[record.className] }) else { throw .unknownClass(record.className) }
            // Every object the copy will name is in the index (the mover must find it).
            try EngineError.wrap { try index.flush() }
            let path = volumesDirectory + "/" + record.id + ".sqlite"
            let held = try EngineError.wrap { try temporaryVolumeDatabase(source.id).copy(to: path) }
            // Objects that became live between the flush above and the copy: their index
            // entries too, before anything names them shared (a let-go passes entries on).
            try EngineError.wrap { try index.flush() }
            let copy = try temporaryVolumeDatabase(record.id)
            let usage = try Self.measure(copy, entry)
            // A volume holding objects of another class's pool copies them into its own.
            let foreign = try EngineError.wrap { try copy.foreignObjects(notIn: entry.poolID, limit: 1) }
            let copyData = record.kind == .volume && !foreign.isEmpty
            var done = record
            done.state = .available
            // Before the holders exist: from now on a let-go of either asks the database.
            sharingHolders.withLock {
                $0.insert(source.id)
                $0.insert(record.id)
            }
            try EngineError.wrap {
                try database.finishCopy(done, sharing: held, with: source.id,
                                        usage: VolumeUsageRecord(volumeID: record.id, storedBytes: usage.storedBytes, liveBytes: usage.liveBytes),
                                        copyData: copyData)
            }
            if done.kind == .volume { usageTable.setUsage(done.id, usage) }
            return done
        }
    }

    /// Undoes a copy that did not finish: its files and its row. Never its objects, which
    /// are its source's (no holder row names the copy yet).
    func abandonCopy(_ record: VolumeRecord) {
        VolumeDatabase.removeDatabaseFiles(volumesDirectory + "/" + record.id + ".sqlite.copying")
        VolumeDatabase.removeDatabaseFiles(volumesDirectory + "/" + record.id + ".sqlite")
        try? database.deleteHolder(id: record.id)
        usageTable.remove(record.id)
        volumeClassNames.withLock { _ = $0.removeValue(forKey: record.id) }
    }

    /// `holder` lets go of objects whose rows it has: their shards go unless another
    /// namespace holds them, then the rows, then their index entries (those of objects that
    /// stay passed to another holder). Safe to repeat after a crash.
    func letGo(_ records: [ObjectRecord], of holder: String, _ vdb: VolumeDatabase) throws(EngineError) {
        try letGo(records.map { ($0.id, UInt32($0.poolID)) }, of: holder, vdb)
    }

    /// `letGo` of objects named by id and the pool their shards are in.
    func letGo(_ held: [(id: String, pool: UInt32)], of holder: String, _ vdb: VolumeDatabase) throws(EngineError) {
        if held.isEmpty { return }
        try shareLocks.withLock(holder) { () throws(EngineError) in try letGoLocked(held, of: holder, vdb) }
    }

    /// `letGo` with `holder`'s share lock held by the caller.
    func letGoLocked(_ records: [ObjectRecord], of holder: String, _ vdb: VolumeDatabase) throws(EngineError) {
        try letGoLocked(records.map { ($0.id, UInt32($0.poolID)) }, of: holder, vdb)
    }

    func letGoLocked(_ held: [(id: String, pool: UInt32)], of holder: String, _ vdb: VolumeDatabase) throws(EngineError) {
        if held.isEmpty { return }
        // With the namespace kept in the cluster's store, the change that freed these lands
        // there first, under this node's lease: a node that lost the volume to another
        // never deletes shards the other's namespace still names.
        do { try vdb.shipNamespace() } catch {
            throw .io("volume \(vdb.volumeID): its namespace could not be shipped (\(vdb.mirror?.isFenced == true ? "another node took it over" : "the store did not answer")); no object deleted")
        }
        let ids = held.map(\.id)
        let kept = try keptElsewhere(ids, holder: holder)
        var byPool: [UInt32: [ObjectID]] = [:]
        for object in held where !kept.contains(object.id) {
            if let id = ObjectID(object.id) { byPool[object.pool, default: []].append(id) }
        }
        for (pool, ids) in byPool { _ = try? objects.delete(pool: pool, objects: ids) }
        try EngineError.wrap { try vdb.removeObjects(ids: ids) }
        index.remove(ids: kept.isEmpty ? ids : ids.filter { !kept.contains($0) })
    }

    /// Of `ids`, those another namespace holds; `holder`'s claim on them ends. Asks the
    /// database only if `holder` ever shared an object. Call under `holder`'s share lock.
    func keptElsewhere(_ ids: [String], holder: String) throws(EngineError) -> Set<String> {
        guard sharingHolders.withLock({ $0.contains(holder) }) else { return [] }
        return try EngineError.wrap { try database.release(ids, holder: holder) }
    }

    static func newID(prefix: String) -> String {
        prefix + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
