import GRDB

/// PGs whose objects may lack shards: written while a member was unreachable
/// (`pg_recovery`). The engine adds a PG when a write comes back degraded and removes it
/// once the mover has rebuilt every missing shard — unless another degraded write marked
/// it meanwhile (its generation moved on), so no write in flight during a recovery pass
/// is forgotten.
extension ClusterDatabase {
    /// Durably records that `pg` of `poolID` needs recovery, bumping its generation.
    public func markForRecovery(poolID: UInt32, pg: Int) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO pg_recovery (pool_id, pg, generation) VALUES (?, ?, 0)
                ON CONFLICT (pool_id, pg) DO UPDATE SET generation = generation + 1
                """, arguments: [Int64(poolID), pg])
        }
    }

    public func pgsNeedingRecovery() throws -> [(poolID: UInt32, pg: Int, generation: Int64)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT pool_id, pg, generation FROM pg_recovery ORDER BY pool_id, pg").map {
                (UInt32($0[0] as Int64), $0[1], $0[2])
            }
        }
    }

    /// Clears the PG if its generation is still `generation`; whether it did.
    @discardableResult
    public func clearRecovery(poolID: UInt32, pg: Int, generation: Int64? = nil) throws -> Bool {
        try writer.write { db in
            if let generation {
                try db.execute(sql: "DELETE FROM pg_recovery WHERE pool_id = ? AND pg = ? AND generation = ?",
                               arguments: [Int64(poolID), pg, generation])
            } else {
                try db.execute(sql: "DELETE FROM pg_recovery WHERE pool_id = ? AND pg = ?", arguments: [Int64(poolID), pg])
            }
            return db.changesCount > 0
        }
    }
}
