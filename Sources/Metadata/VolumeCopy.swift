import Foundation
import Glibc
import GRDB

/// A copy of a volume's database: what a snapshot or a clone starts from.
extension VolumeDatabase {
    /// Copies what the volume has committed (the open namespace batch is committed first)
    /// into a new database file at `path`, durably, and returns the ids of the objects the
    /// copy holds: the live ones (acknowledged writes included). Objects being written or
    /// deleted stay the source's.
    ///
    /// The pages are copied by SQLite's backup API on the volume's writer connection, so no
    /// change of the volume lands halfway (its writes wait for the copy: milliseconds per
    /// 10 MB of metadata; the objects themselves are not copied). The copy is made under
    /// a temporary name and renamed once synced, so `path` exists whole or not at all.
    public func copy(to path: String) throws -> [String] {
        let temporary = path + ".copying"
        Self.removeDatabaseFiles(temporary)
        defer { Self.removeDatabaseFiles(temporary) }
        // Objects whose writes returned are live, though their 'live' may wait to commit.
        try settleDeferred()
        let destination = try DatabaseQueue(path: temporary)
        try writer.writeWithoutTransaction { db in
            try commitBatch(db)
            try destination.writeWithoutTransaction { target in try db.backup(to: target) }
        }
        let held = try destination.writeWithoutTransaction { db -> [String] in
            try db.execute(sql: "PRAGMA journal_mode = DELETE")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.inTransaction {
                try db.execute(sql: "DELETE FROM settling_object")
                try db.execute(sql: "DELETE FROM object WHERE state <> 'live'")
                // A new namespace, never shipped: its first mount under a lease ships it whole
                // (the source's version would make that mount take the store's empty copy).
                try db.execute(sql: "DELETE FROM mirror_change")
                try db.execute(sql: "UPDATE mirror_state SET version = 0, generation = 0")
                return .commit
            }
            return try String.fetchAll(db, sql: "SELECT id FROM object ORDER BY id")
        }
        try destination.close()
        try Self.sync(path: temporary)
        guard Glibc.rename(temporary, path) == 0 else {
            throw MetadataError.database("cannot rename \(temporary) to \(path): errno \(errno)")
        }
        try Self.sync(path: (path as NSString).deletingLastPathComponent)
        return held
    }

    /// Live objects of another pool than `pool` (a clone of another class's data), at most
    /// `limit`.
    public func foreignObjects(notIn pool: UInt32, limit: Int) throws -> [ObjectRecord] {
        try writer.read { db in
            // Not those the filesystem retired (live, no slice left: it lets go of them itself),
            // unless the volume has no namespace at all (the engine's own objects).
            try ObjectRecord.fetchAll(db, sql: """
                SELECT * FROM object WHERE pool_id <> ? AND state = 'live'
                AND (EXISTS (SELECT 1 FROM slice WHERE slice.object = object.id) OR NOT EXISTS (SELECT 1 FROM slice))
                ORDER BY id LIMIT ?
                """, arguments: [Int64(pool), limit])
        }
    }

    /// The pool of every object (any state) not in `pool`.
    public func foreignPools(notIn pool: UInt32) throws -> [String: UInt32] {
        try writer.read { db in
            var result: [String: UInt32] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, pool_id FROM object WHERE pool_id <> ?", arguments: [Int64(pool)]) {
                result[row[0]] = UInt32(row[1] as Int64)
            }
            return result
        }
    }

    /// Makes `new` (staged, 'writing': the same bytes as `old`) take `old`'s place: every
    /// slice that points into `old` points into `new` at the same offsets, `new` is live and
    /// `old` 'deleting' (to be let go), in one transaction. False, and nothing changed, if
    /// `old` is no longer live (the filesystem let go of it meanwhile).
    public func replaceObject(_ old: String, with new: String) throws -> Bool {
        try transaction { db in
            guard try String.fetchOne(db, sql: "SELECT state FROM object WHERE id = ?", arguments: [old]) == "live" else { return false }
            try db.execute(sql: "UPDATE slice SET object = ? WHERE object = ?", arguments: [new, old])
            try db.execute(sql: "UPDATE object SET state = 'live' WHERE id = ? AND state = 'writing'", arguments: [new])
            guard db.changesCount == 1 else { throw MetadataError.notFound("object \(new) being written") }
            try db.execute(sql: "UPDATE object SET state = 'deleting' WHERE id = ?", arguments: [old])
            return true
        }
    }

    /// Deletes a database file and its WAL and shared-memory files, if any.
    public static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    private static func sync(path: String) throws {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else { throw MetadataError.database("cannot open \(path) to sync it: errno \(errno)") }
        defer { Glibc.close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw MetadataError.database("cannot sync \(path): errno \(errno)") }
    }
}
