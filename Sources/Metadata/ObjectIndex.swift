import GRDB

/// One object as the cluster database's index knows it (`pg_object`): enough to move or
/// delete its shards, and to find the volume whose database has the rest of its record.
public struct IndexedObject: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "pg_object"
    /// 32 hex digits (`Storage.ObjectID`).
    public var id: String
    public var poolID: Int64
    public var pg: Int64
    public var volumeID: String
    public var sizeBytes: Int64
    /// What one position of its PG stores for it: one shard file, header included.
    public var shardBytes: Int64

    public init(id: String, poolID: Int64, pg: Int64, volumeID: String, sizeBytes: Int64, shardBytes: Int64) {
        self.id = id
        self.poolID = poolID
        self.pg = pg
        self.volumeID = volumeID
        self.sizeBytes = sizeBytes
        self.shardBytes = shardBytes
    }

    enum CodingKeys: String, CodingKey {
        case pg
        case id = "object_id"
        case poolID = "pool_id"
        case volumeID = "volume_id"
        case sizeBytes = "size_bytes"
        case shardBytes = "shard_bytes"
    }
}

/// A change to the object index, applied in the order given (`ClusterDatabase.applyIndex`).
public enum ObjectIndexChange: Sendable, Hashable {
    case add(IndexedObject)
    case remove(id: String)
}

/// Usage of a volume as last measured: bytes its live objects take on devices, and their data.
public struct VolumeUsageRecord: Hashable, Sendable {
    public var volumeID: String
    public var storedBytes: Int64
    public var liveBytes: Int64

    public init(volumeID: String, storedBytes: Int64, liveBytes: Int64) {
        self.volumeID = volumeID
        self.storedBytes = storedBytes
        self.liveBytes = liveBytes
    }
}

/// The object index: which objects each placement group holds, across every volume, so
/// that work on a PG reads that PG's objects and nothing else. The volume databases stay
/// the record of each object's state; the index follows them (see `v3-object-index`).
extension ClusterDatabase {
    /// Applies index changes in one transaction, in order. Not fsynced: the index of a volume
    /// open when the machine stopped is rebuilt from its database (`replaceIndex`) at start,
    /// so this commit needs to survive only a crash of the process, which WAL gives it.
    /// An add for a volume already deleted is skipped.
    public func applyIndex(_ changes: [ObjectIndexChange]) throws {
        guard !changes.isEmpty else { return }
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
            try db.inTransaction {
                let add = try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO pg_object (object_id, pool_id, pg, volume_id, size_bytes, shard_bytes)
                    SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM volume WHERE id = ?)
                    """)
                let remove = try db.cachedStatement(sql: "DELETE FROM pg_object WHERE object_id = ?")
                for change in changes {
                    switch change {
                    case .add(let o):
                        try add.execute(arguments: [o.id, o.poolID, o.pg, o.volumeID, o.sizeBytes, o.shardBytes, o.volumeID])
                    case .remove(let id):
                        try remove.execute(arguments: [id])
                    }
                }
                return .commit
            }
        }
    }

    /// Makes the index of one volume exactly `objects` (read from its database) and marks
    /// the volume reconciled: no longer in use unless `keepInUse`, its usage recorded.
    public func replaceIndex(volumeID: String, objects: [IndexedObject], usage: VolumeUsageRecord?, keepInUse: Bool) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM pg_object WHERE volume_id = ?", arguments: [volumeID])
            for object in objects where object.volumeID == volumeID { try object.insert(db, onConflict: .replace) }
            if let usage { try Self.saveUsage(usage, db) }
            if !keepInUse { try db.execute(sql: "DELETE FROM volume_in_use WHERE volume_id = ?", arguments: [volumeID]) }
        }
    }

    /// The indexed objects of one PG, by id.
    public func indexedObjects(poolID: UInt32, pg: Int) throws -> [IndexedObject] {
        try writer.read { db in
            try IndexedObject.filter(Column("pool_id") == Int64(poolID) && Column("pg") == Int64(pg)).order(Column("object_id")).fetchAll(db)
        }
    }

    public func indexedObject(id: String) throws -> IndexedObject? {
        try writer.read { db in try IndexedObject.fetchOne(db, key: id) }
    }

    /// Per PG of the pool that holds any object: the bytes one of its positions stores.
    public func positionBytes(poolID: UInt32) throws -> [Int: Int64] {
        try writer.read { db in
            var result: [Int: Int64] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT pg, SUM(shard_bytes) FROM pg_object WHERE pool_id = ? GROUP BY pg",
                                           arguments: [Int64(poolID)])
            while let row = try rows.next() { result[Int(row[0] as Int64)] = row[1] }
            return result
        }
    }

    /// Whether the pool holds any object (of any volume or snapshot).
    public func poolHasObjects(poolID: UInt32) throws -> Bool {
        try writer.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pg_object WHERE pool_id = ?)", arguments: [Int64(poolID)]) ?? false }
    }

    /// Objects of the pool in any of `pgs`.
    public func indexedObjectCount(poolID: UInt32, pgs: Set<Int>) throws -> Int {
        guard !pgs.isEmpty else { return 0 }
        return try writer.read { db in
            try IndexedObject.filter(Column("pool_id") == Int64(poolID) && pgs.map(Int64.init).contains(Column("pg"))).fetchCount(db)
        }
    }

    // MARK: volumes in use

    /// Records (durably) that a volume is open for writing, before its first object row.
    public func markInUse(volumeID: String) throws {
        try writer.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO volume_in_use (volume_id) SELECT id FROM volume WHERE id = ?", arguments: [volumeID])
        }
    }

    public func volumesInUse() throws -> [String] {
        try writer.read { db in try String.fetchAll(db, sql: "SELECT volume_id FROM volume_in_use ORDER BY volume_id") }
    }

    // MARK: usage

    public func usages() throws -> [VolumeUsageRecord] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT volume_id, stored_bytes, live_bytes FROM volume_usage").map {
                VolumeUsageRecord(volumeID: $0[0], storedBytes: $0[1], liveBytes: $0[2])
            }
        }
    }

    static func saveUsage(_ usage: VolumeUsageRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO volume_usage (volume_id, stored_bytes, live_bytes)
            SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM volume WHERE id = ?)
            """, arguments: [usage.volumeID, usage.storedBytes, usage.liveBytes, usage.volumeID])
    }
}
