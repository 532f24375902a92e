import Foundation
import GRDB

/// One volume's metadata in its own SQLite file, so one busy volume never waits on
/// another's writer: the objects holding its data (and, from the filesystem, its namespace).
public final class VolumeDatabase: Sendable {
    public let volumeID: String
    let writer: any DatabaseWriter

    public init(path: String, volumeID: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        self.volumeID = volumeID
        writer = try DatabasePool(path: path, configuration: configuration)
        try Durable.makeCommitsDurable(writer)
        try VolumeMigrations.migrator.migrate(writer)
    }

    /// In memory, for tests.
    public init(volumeID: String) throws {
        self.volumeID = volumeID
        writer = try DatabaseQueue()
        try VolumeMigrations.migrator.migrate(writer)
    }

    /// Step 1 of a write: the object is known before any shard exists, so a crash leaves
    /// a 'writing' row that start-up collects rather than shards nobody knows about.
    ///
    /// This commit skips its own WAL fsync (synchronous=NORMAL for this one transaction):
    /// it survives a process crash (the WAL is in the OS), and becomes durable with the
    /// next full commit — the 'live' one. Only a power loss between the two can forget
    /// the row; the object was not acknowledged then, and its shards are unreferenced
    /// space, never lost data.
    public func beginObject(_ record: ObjectRecord) throws {
        precondition(record.state == .writing)
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
            try db.inTransaction {
                try record.insert(db)
                return .commit
            }
        }
    }

    /// The current `PRAGMA synchronous` of the writer (2 = FULL), for tests.
    func synchronousMode() throws -> Int {
        try writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    public func setState(object id: String, _ state: ObjectRecord.State) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE object SET state = ? WHERE id = ?", arguments: [state.rawValue, id])
            if db.changesCount == 0 { throw MetadataError.notFound("object \(id)") }
        }
    }

    public func removeObject(id: String) throws {
        try writer.write { db in _ = try ObjectRecord.deleteOne(db, key: id) }
    }

    public func object(id: String) throws -> ObjectRecord? {
        try writer.read { db in try ObjectRecord.fetchOne(db, key: id) }
    }

    public func objects(state: ObjectRecord.State) throws -> [ObjectRecord] {
        try writer.read { db in try ObjectRecord.filter(Column("state") == state.rawValue).order(Column("id")).fetchAll(db) }
    }

    /// The live objects of one PG (what the mover copies).
    public func objects(poolID: UInt32, pg: Int) throws -> [ObjectRecord] {
        try writer.read { db in
            try ObjectRecord.filter(Column("pool_id") == Int64(poolID) && Column("pg") == Int64(pg) && Column("state") == "live")
                .order(Column("id")).fetchAll(db)
        }
    }

    /// Bytes of data (not counting redundancy) in live objects.
    public func liveBytes() throws -> Int64 {
        try writer.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size_bytes), 0) FROM object WHERE state = 'live'") ?? 0 }
    }

    /// Bytes the live objects take on devices: per object, `width` shard files of a
    /// header plus ⌈size / k⌉ rounded up to `alignment` (k = 1, alignment 1 for copies).
    public func storedBytes(width: Int, k: Int, alignment: Int, headerBytes: Int) throws -> Int64 {
        try writer.read { db in
            try Int64.fetchOne(db, sql: """
                SELECT COALESCE(SUM(? * ((((size_bytes + ? - 1) / ?) + ? - 1) / ? * ? + ?)), 0) FROM object WHERE state = 'live'
                """, arguments: [width, k, k, alignment, alignment, alignment, headerBytes]) ?? 0
        }
    }

    public func objectCount() throws -> Int {
        try writer.read { db in try ObjectRecord.fetchCount(db) }
    }
}
