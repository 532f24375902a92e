import GRDB

/// Snapshots, and objects that several namespaces hold (`v8-snapshots`).
///
/// The rule that keeps shared objects safe: a namespace (a volume or a snapshot) letting go
/// of an object deletes its shards only if no *other* namespace is named as its holder in
/// `object_holder`. The rows are added in the transaction that makes a copy available
/// (`finishCopy`) and removed by the holder letting go (`release`) or with its row
/// (`deleteHolder`), so every answer is idempotent: a holder that lets go again after a
/// crash gets the same answer.
extension ClusterDatabase {
    /// The snapshot named `name`, in any state.
    public func snapshot(named name: String) throws -> VolumeRecord? {
        try writer.read { db in try VolumeRecord.filter(Column("kind") == VolumeRecord.Kind.snapshot.rawValue && Column("name") == name).fetchOne(db) }
    }

    /// Available snapshots by id after `after`, at most `limit`, optionally only those of
    /// one source volume.
    public func snapshots(after: String?, limit: Int?, sourceVolume: String?) throws -> [VolumeRecord] {
        try writer.read { db in
            var request = VolumeRecord.filter(Column("state") == VolumeRecord.State.available.rawValue && Column("kind") == VolumeRecord.Kind.snapshot.rawValue)
            if let sourceVolume { request = request.filter(Column("source") == "volume:" + sourceVolume) }
            if let after { request = request.filter(Column("id") > after) }
            request = request.order(Column("id"))
            if let limit { request = request.limit(limit) }
            return try request.fetchAll(db)
        }
    }

    /// Makes a copy available: `record` (a new volume or snapshot, state 'available') is
    /// saved, and `objects` — those its database shares with `sourceID`'s — name both as
    /// holders. One transaction: a crash before it leaves a copy no one holds anything by.
    /// `copyData`: the copy is of another class; its objects are to be copied into its own
    /// pool (`clone_copy`).
    public func finishCopy(_ record: VolumeRecord, sharing objects: [String], with sourceID: String, usage: VolumeUsageRecord,
                           copyData: Bool = false) throws {
        try writer.write { db in
            // Only a copy still being made becomes available (not one deleted meanwhile).
            guard try String.fetchOne(db, sql: "SELECT state FROM volume WHERE id = ?", arguments: [record.id]) == VolumeRecord.State.creating.rawValue else {
                throw MetadataError.notFound("\(record.kind.rawValue) \(record.id) being made")
            }
            if copyData { try db.execute(sql: "INSERT OR IGNORE INTO clone_copy (volume_id) VALUES (?)", arguments: [record.id]) }
            let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO object_holder (object_id, holder) VALUES (?, ?)")
            for object in objects {
                try insert.execute(arguments: [object, sourceID])
                try insert.execute(arguments: [object, record.id])
            }
            try db.execute(sql: "INSERT OR IGNORE INTO sharing_holder (volume_id) VALUES (?), (?)", arguments: [sourceID, record.id])
            try record.update(db)
            try ClusterDatabase.saveUsage(usage, db)
        }
    }

    /// Clones whose objects are still being copied into their own class's pool.
    public func cloneCopies() throws -> [String] {
        try writer.read { db in try String.fetchAll(db, sql: "SELECT volume_id FROM clone_copy ORDER BY volume_id") }
    }

    /// A clone's objects are all in its own pool now.
    public func finishCloneCopy(volumeID: String) throws {
        try writer.write { db in try db.execute(sql: "DELETE FROM clone_copy WHERE volume_id = ?", arguments: [volumeID]) }
    }

    /// Namespaces that ever shared an object (`sharing_holder`).
    public func sharingHolders() throws -> Set<String> {
        try writer.read { db in Set(try String.fetchAll(db, sql: "SELECT volume_id FROM sharing_holder")) }
    }

    /// `holder` lets go of `objects`: returns those another namespace still holds (their
    /// shards must stay). Its holder rows go, and index entries it owned for the objects
    /// that stay pass to another holder. Idempotent.
    public func release(_ objects: [String], holder: String) throws -> Set<String> {
        if objects.isEmpty { return [] }
        return try writer.write { db in
            let others = try db.cachedStatement(sql: "SELECT 1 FROM object_holder WHERE object_id = ? AND holder <> ? LIMIT 1")
            let drop = try db.cachedStatement(sql: "DELETE FROM object_holder WHERE object_id = ? AND holder = ?")
            let reown = try db.cachedStatement(sql: """
                UPDATE pg_object SET volume_id = (SELECT holder FROM object_holder WHERE object_id = ?1 AND holder <> ?2 ORDER BY holder LIMIT 1)
                WHERE object_id = ?1 AND volume_id = ?2
                """)
            var kept: Set<String> = []
            for object in objects {
                if try Bool.fetchOne(others, arguments: [object, holder]) == true {
                    kept.insert(object)
                    try reown.execute(arguments: [object, holder])
                }
                try drop.execute(arguments: [object, holder])
            }
            return kept
        }
    }

    /// Deletes a volume's or snapshot's row once its data is gone: index entries it owns for
    /// objects others still hold pass to one of them first, in the same transaction; its
    /// holder rows, usage and remaining index entries go with the row.
    public func deleteHolder(id: String) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE pg_object SET volume_id = (SELECT h.holder FROM object_holder h WHERE h.object_id = pg_object.object_id AND h.holder <> ?1 ORDER BY h.holder LIMIT 1)
                WHERE volume_id = ?1 AND EXISTS (SELECT 1 FROM object_holder h WHERE h.object_id = pg_object.object_id AND h.holder <> ?1)
                """, arguments: [id])
            _ = try VolumeRecord.deleteOne(db, key: id)
        }
    }

    /// What to add to a pool's per-volume usage sums so that each shared object counts once:
    /// per shared object, (1 − the volumes among its holders) × its bytes (snapshots have
    /// no usage figure of their own). `shardBytes`: per position, as `pg_object` has it.
    public func sharedCorrection(poolID: UInt32) throws -> (shardBytes: Int64, sizeBytes: Int64) {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(p.shard_bytes * (1 - s.volumes)), 0), COALESCE(SUM(p.size_bytes * (1 - s.volumes)), 0)
                FROM (SELECT h.object_id, SUM(v.kind = 'volume') AS volumes FROM object_holder h JOIN volume v ON v.id = h.holder
                      GROUP BY h.object_id) s
                JOIN pg_object p ON p.object_id = s.object_id
                WHERE p.pool_id = ?
                """, arguments: [Int64(poolID)])
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }
}
