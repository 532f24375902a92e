import Foundation
import Metadata
import Placement
import Storage
import StorageClasses
import Synchronization

extension Engine {
    /// Every volume (not snapshot), in any state.
    public func volumes() throws(EngineError) -> [VolumeRecord] { try EngineError.wrap { try database.volumes() }.filter { $0.kind == .volume } }

    /// A page of the available volumes, by id: those after `after`, at most `limit`.
    public func volumes(after: String?, limit: Int?) throws(EngineError) -> [VolumeRecord] {
        try EngineError.wrap { try database.volumes(after: after, limit: limit) }
    }

    /// Volumes per class, counted in the database.
    public func volumeCounts() throws(EngineError) -> [String: Int] { try EngineError.wrap { try database.volumeCounts() } }

    /// The volume `id` in any state; nil for an unknown id or a snapshot's.
    public func volume(id: String) throws(EngineError) -> VolumeRecord? {
        try EngineError.wrap { try database.volume(id: id) }.flatMap { $0.kind == .volume ? $0 : nil }
    }

    public func volume(named name: String) throws(EngineError) -> VolumeRecord? { try EngineError.wrap { try database.volume(named: name) } }

    /// Creates an empty volume of a class. Admission control: refused when the class's
    /// promised-but-unwritten space (provisioned − written, this volume included) would
    /// exceed what it can still store (`usable`), so nothing is accepted that cannot be kept.
    ///
    /// Admission runs under the admin lock against in-memory figures, with the volume
    /// reserved; the durable insert is group-committed with concurrent creations, so N
    /// parallel creates cost about one fsync. The volume's own database is created when it
    /// is first used.
    ///
    /// `source`: a clone of a snapshot or volume of the same class, at least its size; it
    /// shares the source's objects (`copyNamespace`). Its row is 'creating' until the copy
    /// is made, and a start-up that finds it so removes it.
    public func createVolume(name: String, className: String, capacityBytes: Int64,
                             parameters: [String: String] = [:], source: ContentSource? = nil) throws(EngineError) -> VolumeRecord {
        guard !name.isEmpty, name.utf8.count <= 1024 else { throw .invalidArgument("volume name must be 1-1024 bytes") }
        guard capacityBytes >= 0 else { throw .invalidArgument("capacity must not be negative") }
        let json = try EngineError.wrap {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(parameters), as: UTF8.self)
        }
        let record = try adminLock.withLock { _ throws(EngineError) -> VolumeRecord in
            guard storageClass(named: className) != nil else { throw .unknownClass(className) }
            let exists = try EngineError.wrap { try database.volume(named: name) } != nil
            if exists || reservations.withLock({ $0.names.contains(name) }) {
                throw .invalidArgument("a volume named \"\(name)\" exists")
            }
            if let source { _ = try cloneSource(source, className: className, capacityBytes: capacityBytes) }
            try admit(className: className, additionalBytes: capacityBytes)
            reservations.withLock {
                $0.names.insert(name)
                $0.bytes[className, default: 0] += capacityBytes
            }
            return VolumeRecord(id: Self.newID(prefix: "vol-"), name: name, className: className, capacityBytes: capacityBytes,
                                state: source == nil ? .available : .creating, parameters: json, createdMs: Engine.nowMs(),
                                source: source?.description)
        }
        defer {
            reservations.withLock {
                $0.names.remove(name)
                $0.bytes[className, default: 0] -= capacityBytes
            }
        }
        try EngineError.wrap {
            try volumeCommits.commit([.saveVolume(record), .saveUsage(VolumeUsageRecord(volumeID: record.id, storedBytes: 0, liveBytes: 0))])
        }
        // Before the reservation goes (`defer` above), so admission never misses it.
        usageTable.setUsage(record.id, VolumeUsage(className: className, storedBytes: 0, liveBytes: 0))
        usageTable.setCapacity(record.id, className: className, bytes: capacityBytes)
        guard let source else { return record }
        do {
            return try copyNamespace(from: try cloneSource(source, className: className, capacityBytes: capacityBytes), into: record)
        } catch {
            abandonCopy(record)
            throw error
        }
    }

    /// Grows a volume (never shrinks), under the same admission rule.
    public func expandVolume(id: String, capacityBytes: Int64) throws(EngineError) -> VolumeRecord {
        try adminLock.withLock { _ throws(EngineError) -> VolumeRecord in
            guard var record = try EngineError.wrap({ try database.volume(id: id) }) else { throw .unknownVolume(id) }
            if capacityBytes <= record.capacityBytes { return record }
            try admit(className: record.className, additionalBytes: capacityBytes - record.capacityBytes)
            record.capacityBytes = capacityBytes
            try EngineError.wrap { try database.commit([.saveVolume(record)]) }
            usageTable.setCapacity(record.id, className: record.className, bytes: capacityBytes)
            return record
        }
    }

    func admit(className: String, additionalBytes: Int64) throws(EngineError) {
        let (provisioned, data, usable) = try admissionFigures(className: className)
        let promised = max(0, provisioned - data) + additionalBytes
        if promised > usable {
            throw .insufficientCapacity(className: className, requestedBytes: additionalBytes,
                                        availableBytes: max(0, usable - max(0, provisioned - data)))
        }
    }

    /// What admission weighs for a class: provisioned bytes (committed volumes plus
    /// reservations), data written, and usable space — from memory and one SQL query, not
    /// the full capacity report (which also measures every domain and warning).
    func admissionFigures(className: String) throws(EngineError) -> (provisioned: Int64, data: Int64, usable: Int64) {
        let s = state.withLock { $0 }
        guard let entry = s.classes[className] else { throw .unknownClass(className) }
        let totals = classTotals(entry)
        let provisioned = totals.provisionedBytes + reservations.withLock { $0.bytes[className, default: 0] }
        let data = totals.liveBytes
        let counts = try shardCounts(s, pool: entry.poolID)
        var devices: [CapacityModel.DeviceState] = []
        for device in s.map.devices where device.isEligible {
            guard let store = objects.device(device.id) else { continue }
            // An unreachable device (its host down, or not answered yet) counts with what it
            // last reported: nothing lands on it while it is away, and a host down must not
            // stop every new volume of the classes that place on it.
            devices.append(.init(id: device.id, capacityBytes: Int64(store.capacityBytes), usedBytes: Int64(store.usedBytes)))
        }
        let c = entry.storageClass
        let usable = CapacityModel.usableBytes(shardCounts: counts, pgCount: c.pgCount, width: c.rule.width, overhead: c.overhead,
                                               devices: devices, fullRatio: configuration.fullRatio)
        return (provisioned, data, usable)
    }

    /// Shards per device of a pool's current placement, computed once per epoch.
    func shardCounts(_ s: State, pool: UInt32) throws(EngineError) -> [DeviceID: Int] {
        if let cached = shardCounts.withLock({ $0.epoch == s.map.epoch ? $0.counts[pool] : nil }) { return cached }
        let counts = try EngineError.wrap { try s.placer.table(pool: pool).counts() }
        shardCounts.withLock {
            if $0.epoch != s.map.epoch { $0 = (s.map.epoch, [:]) }
            $0.counts[pool] = counts
        }
        return counts
    }

    /// Deletes a volume and all its data. Idempotent: an unknown id succeeds. The volume is
    /// marked 'deleting' first, so a crash midway finishes the job at the next start.
    public func deleteVolume(id: String) throws(EngineError) {
        try adminLock.withLock { _ throws(EngineError) in
            guard var record = try volume(id: id) else { return }
            if record.state == .creating { throw .busy("volume \(id) is being made from \(record.source ?? "its source")") }
            record.state = .deleting
            try EngineError.wrap { try database.commit([.saveVolume(record)]) }
            volumeClassNames.withLock { _ = $0.removeValue(forKey: id) }  // from now on it reads as deleting
            try deleteVolumeData(record)
        }
    }

    /// Deletes a volume's or snapshot's objects (those no other namespace holds), its
    /// database and its row. Safe to repeat after a crash.
    func deleteVolumeData(_ record: VolumeRecord) throws(EngineError) {
        // A clone's copy step in progress finishes first; later ones see it deleting.
        shareLocks.withLock(record.id) {}
        // Its index entries, usage and in-use mark go with its row at the end (ON DELETE
        // CASCADE), after every shard: the index still lists them meanwhile, as it must.
        // Entries of objects others still hold pass to one of them (`deleteHolder`). With
        // namespaces in the cluster's store, under the volume's lease (the objects its last
        // writer shipped, not what this node last saw).
        try withLeasedVolumeDatabase(record.id) { (vdb) throws(EngineError) in
            let held = try EngineError.wrap { try vdb.objects() }
            for start in stride(from: 0, to: held.count, by: 512) {
                try letGo(Array(held[start..<min(held.count, start + 512)]), of: record.id, vdb)
            }
        }
        volumeDatabases.withLock { _ = $0.removeValue(forKey: record.id) }
        volumeClassNames.withLock { _ = $0.removeValue(forKey: record.id) }  // one learnt while deleting
        VolumeDatabase.removeDatabaseFiles(volumesDirectory + "/" + record.id + ".sqlite")
        try EngineError.wrap { try database.deleteHolder(id: record.id) }
        sharingHolders.withLock { _ = $0.remove(record.id) }
        usageTable.remove(record.id)
    }

    // MARK: objects

    /// Writes `bytes` as a new object of the volume and returns its id once its row and
    /// every shard are durable. Two things run at once: the row ('writing', marked settling)
    /// is committed with a WAL fsync, and the shards are written and fsynced; a shard takes
    /// its final name only after the row is durable, so a crash never leaves shards the
    /// database does not know. The flushes overlap instead of adding up. With both done the
    /// object is live (its commit, without fsync, rides on the next write's: `settleLater`).
    /// A crash before that commit leaves a settling row: start-up keeps the object if it
    /// reads back (it may have been acknowledged) and collects it if its shards are
    /// incomplete.
    public func writeObject(volume: String, bytes: [UInt8]) throws(EngineError) -> ObjectID {
        let (vdb, entry) = try volumeAndClass(volume)
        let id = generator.next()
        let record = Self.newRecord(id, entry, size: bytes.count)
        index.add(Self.indexed(record, volume: volume, entry))
        let rowDurable = Promise<Bool>()
        let rowError = Mutex<(any Error)?>(nil)
        // A queue of its own (libdispatch's overcommitting pool), not the global queue: the
        // shards wait for this row, and the global queue has only one thread per CPU, which
        // blocked callers can all hold.
        DispatchQueue(label: "berth.object-row").async {
            do { try vdb.beginSettlingObjectDurably(record); rowDurable.fulfill(true) } catch {
                rowError.withLock { $0 = error }
                rowDurable.fulfill(false)
            }
        }
        var stored: StorageError?
        var missing: [Int] = []
        do { missing = try objects.put(pool: entry.poolID, object: id, bytes: bytes, renameAfter: rowDurable) } catch { stored = error }
        if stored == nil && !missing.isEmpty {
            do throws(EngineError) { try recordDegradedWrite(pool: entry.poolID, object: id) } catch { stored = .unreadable(object: "\(id)", reason: "\(error)") }
        }
        let recorded = rowDurable.value()
        if let failure: any Error = rowError.withLock({ $0 }) ?? stored {
            // `put` removed the shards it wrote, or abandoned them unnamed when the row failed.
            if recorded { try? vdb.removeObject(id: id.description) }
            index.remove(ids: [id.description])
            try EngineError.wrap { throw failure }
        }
        vdb.settleLater(object: id.description)
        return id
    }

    /// Writes the object's shards but leaves it 'writing': the caller makes it live in the
    /// same transaction that makes it reachable (the filesystem's slice commit). Until
    /// then a crash collects it at start-up.
    public func stageObject(volume: String, bytes: [UInt8]) throws(EngineError) -> ObjectID {
        let (vdb, entry) = try volumeAndClass(volume)
        return try stageObject(volume: volume, bytes: bytes, vdb, entry)
    }

    func stageObject(volume: String, bytes: [UInt8], _ vdb: VolumeDatabase, _ entry: ClassEntry) throws(EngineError) -> ObjectID {
        let id = generator.next()
        let record = Self.newRecord(id, entry, size: bytes.count)
        index.add(Self.indexed(record, volume: volume, entry))
        do throws(EngineError) {
            try EngineError.wrap { try vdb.beginObject(record) }
            let missing: [Int]
            do { missing = try objects.put(pool: entry.poolID, object: id, bytes: bytes) } catch { throw .storage(error) }
            if !missing.isEmpty { try recordDegradedWrite(pool: entry.poolID, object: id) }
        } catch {
            try? vdb.removeObject(id: id.description)
            index.remove(ids: [id.description])
            throw error
        }
        return id
    }

    /// The row of a new object, 'writing'.
    private static func newRecord(_ id: ObjectID, _ entry: ClassEntry, size: Int) -> ObjectRecord {
        ObjectRecord(id: id.description, poolID: Int64(entry.poolID), pg: Int64(id.pg(count: entry.codec.pgCount)),
                     sizeBytes: Int64(size), state: .writing, createdMs: Engine.nowMs())
    }

    /// Removes objects already marked 'deleting' (or any state): all their shards (each
    /// device's at once, one sync per directory), then all their rows in one transaction.
    /// Shards a device could not remove are orphans for garbage collection, as with one
    /// object; a crash before the rows go leaves them for start-up to finish.
    /// Objects a snapshot or clone shares keep their shards (`letGo`).
    public func purgeObjects(volume: String, ids: [String]) throws(EngineError) {
        if ids.isEmpty { return }
        let (vdb, entry) = try volumeAndClass(volume)
        if sharingHolders.withLock({ $0.contains(volume) }) {
            // Its objects may be another class's (only a clone's can, and a clone shares from
            // the start): their pools from their own rows.
            try letGo(try EngineError.wrap { try ids.compactMap { try vdb.object(id: $0) } }, of: volume, vdb)
        } else {
            try letGo(ids.map { ($0, entry.poolID) }, of: volume, vdb)
        }
    }

    /// The volume's own database (objects and, for the filesystem, its namespace).
    public func namespace(volume: String) throws(EngineError) -> VolumeDatabase {
        try volumeAndClass(volume).0
    }

    /// The class of a volume.
    public func storageClass(ofVolume volume: String) throws(EngineError) -> StorageClass {
        try classEntry(ofVolume: volume).storageClass
    }

    /// The pool holding a volume's objects (for reads that go to `objects` directly).
    public func pool(ofVolume volume: String) throws(EngineError) -> UInt32 {
        try classEntry(ofVolume: volume).poolID
    }

    /// Reads a live object of the volume.
    public func readObject(volume: String, id: ObjectID) throws(EngineError) -> ObjectStore.ReadResult {
        let (vdb, entry) = try volumeAndClass(volume)
        guard let record = try EngineError.wrap({ try vdb.object(id: id.description) }), record.state == .live else {
            throw .invalidArgument("volume \(volume) has no object \(id)")
        }
        return try EngineError.wrap { try objects.get(pool: record.poolID > 0 ? UInt32(record.poolID) : entry.poolID, object: id) }
    }

    public func deleteObject(volume: String, id: ObjectID) throws(EngineError) {
        let (vdb, _) = try volumeAndClass(volume)
        guard let record = try EngineError.wrap({ try vdb.object(id: id.description) }) else { return }
        try EngineError.wrap { try vdb.setState(object: id.description, .deleting) }
        try letGo([record], of: volume, vdb)
    }

    public func objectIDs(volume: String) throws(EngineError) -> [ObjectID] {
        let (vdb, _) = try volumeAndClass(volume)
        return try EngineError.wrap { try vdb.objects(state: .live).compactMap { ObjectID($0.id) } }
    }

    /// An available volume's database and class. The class of a volume never changes, so
    /// it is remembered (a cluster-database read per object was a tenth of a put's
    /// overhead); `deleteVolume` forgets it.
    func volumeAndClass(_ volume: String) throws(EngineError) -> (VolumeDatabase, ClassEntry) {
        let entry = try classEntry(ofVolume: volume)
        return (try volumeDatabase(volume), entry)
    }

    /// An available volume's class, without opening its database (which, with namespaces
    /// in the cluster's store, takes the volume's lease).
    func classEntry(ofVolume volume: String) throws(EngineError) -> ClassEntry {
        let className: String
        if let known = volumeClassNames.withLock({ $0[volume] }) {
            className = known
        } else {
            guard let record = try EngineError.wrap({ try database.volume(id: volume) }), record.state == .available, record.kind == .volume else {
                throw .unknownVolume(volume)
            }
            className = record.className
            volumeClassNames.withLock { $0[volume] = className }
        }
        guard let entry = state.withLock({ $0.classes[className] }) else { throw .unknownClass(className) }
        return entry
    }
}
