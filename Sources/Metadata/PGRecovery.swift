import GRDB

/// PGs whose objects may lack shards: written while a member was unreachable
/// (`pg_recovery`). The engine adds a PG when a write comes back degraded and removes it
/// once the mover has rebuilt every missing shard.
extension ClusterDatabase {
    /// Durably records that `pg` of `poolID` needs recovery (idempotent).
    public func markForRecovery(poolID: UInt32, pg: Int) throws {
        try writer.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO pg_recovery (pool_id, pg) VALUES (?, ?)", arguments: [Int64(poolID), pg])
        }
    }

    public func pgsNeedingRecovery() throws -> [(poolID: UInt32, pg: Int)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT pool_id, pg FROM pg_recovery ORDER BY pool_id, pg").map { (UInt32($0[0] as Int64), $0[1]) }
        }
    }

    public func clearRecovery(poolID: UInt32, pg: Int) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM pg_recovery WHERE pool_id = ? AND pg = ?", arguments: [Int64(poolID), pg])
        }
    }
}
