import Foundation
import GRDB
import Placement

/// The cluster's metadata in one SQLite file (WAL, synchronous FULL): storage classes,
/// devices, every epoch of the cluster map, shard locations, movement progress, volumes.
/// Each method is one transaction; `commit(_:)` groups several changes into one.
public final class ClusterDatabase: ClusterStore, Sendable {
    let writer: any DatabaseWriter

    /// Opens (creating if needed) the database at `path` and migrates it.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        writer = try SharedFileOpen.pool(path: path, configuration: configuration, migrator: ClusterMigrations.migrator)
        try Durable.makeCommitsDurable(writer)
    }

    /// An in-memory database, for tests.
    public init() throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        writer = try DatabaseQueue(configuration: configuration)
        try ClusterMigrations.migrator.migrate(writer)
    }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    // MARK: grouped changes

    /// Several changes in one transaction: all or nothing.
    public func commit(_ changes: [ClusterChange]) throws {
        try writer.write { db in
            for change in changes { try Self.apply(change, db) }
        }
    }

    static func apply(_ change: ClusterChange, _ db: Database) throws {
        switch change {
        case .saveClass(let r): try r.save(db)
        case .deleteClass(let name):
            if try VolumeRecord.filter(Column("class_name") == name).fetchCount(db) > 0 {
                throw MetadataError.inUse("storage class \"\(name)\" (volumes use it)")
            }
            _ = try StorageClassRecord.deleteOne(db, key: name)
        case .saveDevice(let r): try r.save(db)
        case .deleteDevice(let id): _ = try DeviceRecord.deleteOne(db, key: id)
        case .setHealthMark(let device, let state?):
            try db.execute(sql: "INSERT INTO health_mark (device, state) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET state = excluded.state",
                           arguments: [device, state])
        case .startMaintenance(let device, let started, let until):
            try db.execute(sql: """
                INSERT INTO maintenance (device, started_ms, until_ms) VALUES (?, ?, ?)
                ON CONFLICT (device) DO UPDATE SET until_ms = excluded.until_ms
                """, arguments: [device, started, until])
        case .endMaintenance(let device):
            try db.execute(sql: "DELETE FROM maintenance WHERE device = ?", arguments: [device])
        case .setHealthMark(let device, nil):
            try db.execute(sql: "DELETE FROM health_mark WHERE device = ?", arguments: [device])
        case .insertMap(let map):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = String(decoding: try encoder.encode(map), as: UTF8.self)
            try db.execute(sql: "INSERT INTO cluster_map (epoch, map, created_ms) VALUES (?, ?, ?)",
                           arguments: [Int64(map.epoch), json, ClusterDatabase.now()])
        case .setLocations(let poolID, let table):
            try db.execute(sql: "DELETE FROM shard_location WHERE pool_id = ?", arguments: [Int64(poolID)])
            let statement = try db.makeStatement(sql: "INSERT INTO shard_location (pool_id, pg, position, device) VALUES (?, ?, ?, ?)")
            for pg in 0..<table.pgCount {
                for (position, device) in table[pg].enumerated() {
                    try statement.execute(arguments: [Int64(poolID), Int64(pg), Int64(position), device.rawValue])
                }
            }
        case .setLocation(let r): try r.save(db)
        case .addCleanup(let r): try r.save(db)
        case .removeCleanup(let r): _ = try r.delete(db)
        case .startMovement(let r): try r.save(db)
        case .saveVolume(let r): try r.save(db)
        case .deleteVolume(let id): _ = try VolumeRecord.deleteOne(db, key: id)
        case .saveUsage(let usage): try ClusterDatabase.saveUsage(usage, db)
        case .clearInUse(let id): try db.execute(sql: "DELETE FROM volume_in_use WHERE volume_id = ?", arguments: [id])
        }
    }

    // MARK: reads

    public func classes() throws -> [StorageClassRecord] {
        try writer.read { db in try StorageClassRecord.order(Column("pool_id")).fetchAll(db) }
    }

    public func devices() throws -> [DeviceRecord] {
        try writer.read { db in try DeviceRecord.order(Column("id")).fetchAll(db) }
    }

    /// The states the health check set, by device (`Change.setHealthMark`).
    /// Devices in maintenance: (device, started, until) in wall-clock milliseconds.
    public func maintenance() throws -> [(device: String, startedMs: Int64, untilMs: Int64?)] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT device, started_ms, until_ms FROM maintenance ORDER BY device").map { ($0[0], $0[1], $0[2]) }
        }
    }

    public func healthMarks() throws -> [String: String] {
        try writer.read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT device, state FROM health_mark").map { ($0["device"] as String, $0["state"] as String) },
                       uniquingKeysWith: { a, _ in a })
        }
    }

    /// The newest cluster map, or nil before the first epoch.
    public func latestMap() throws -> ClusterMap? {
        try writer.read { db in
            guard let json = try String.fetchOne(db, sql: "SELECT map FROM cluster_map ORDER BY epoch DESC LIMIT 1") else { return nil }
            do { return try JSONDecoder().decode(ClusterMap.self, from: Data(json.utf8)) } catch {
                throw MetadataError.corrupt("latest cluster map does not decode: \(error)")
            }
        }
    }

    public func epochs() throws -> [UInt64] {
        try writer.read { db in try Int64.fetchAll(db, sql: "SELECT epoch FROM cluster_map ORDER BY epoch").map { UInt64($0) } }
    }

    /// Per pool, per PG, the devices holding each position's shards.
    public func locations(poolID: UInt32) throws -> [[DeviceID]] {
        try writer.read { db in
            let rows = try ShardLocationRecord.filter(Column("pool_id") == Int64(poolID))
                .order(Column("pg"), Column("position")).fetchAll(db)
            var result: [[DeviceID]] = []
            for row in rows {
                while result.count <= Int(row.pg) { result.append([]) }
                result[Int(row.pg)].append(DeviceID(row.device))
            }
            return result
        }
    }

    public func cleanups() throws -> [CleanupRecord] {
        try writer.read { db in try CleanupRecord.fetchAll(db) }
    }

    public func latestMovement() throws -> MovementRecord? {
        try writer.read { db in try MovementRecord.order(Column("epoch").desc).fetchOne(db) }
    }

    /// Adds progress to a movement burst; marks it finished when told.
    public func recordProgress(epoch: Int64, positions: Int64, bytes: Int64, finished: Bool) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE movement SET done_positions = done_positions + ?, done_bytes = done_bytes + ?,
                    finished_ms = CASE WHEN ? THEN ? ELSE finished_ms END
                WHERE epoch = ?
                """, arguments: [positions, bytes, finished, ClusterDatabase.now(), epoch])
        }
    }

    public func volumes() throws -> [VolumeRecord] {
        try writer.read { db in try VolumeRecord.order(Column("created_ms"), Column("id")).fetchAll(db) }
    }

    /// Available volumes with an id after `after` (all if nil), by id, at most `limit`: a
    /// page of a listing, read through the primary key.
    public func volumes(after: String?, limit: Int?) throws -> [VolumeRecord] {
        try writer.read { db in
            var request = VolumeRecord.filter(Column("state") == VolumeRecord.State.available.rawValue && Column("kind") == VolumeRecord.Kind.volume.rawValue)
            if let after { request = request.filter(Column("id") > after) }
            request = request.order(Column("id"))
            if let limit { request = request.limit(limit) }
            return try request.fetchAll(db)
        }
    }

    /// Volumes per class (any state; snapshots not counted).
    public func volumeCounts() throws -> [String: Int] {
        try writer.read { db in
            var result: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT class_name, COUNT(*) FROM volume WHERE kind = 'volume' GROUP BY class_name") { result[row[0]] = row[1] }
            return result
        }
    }

    public func volume(id: String) throws -> VolumeRecord? {
        try writer.read { db in try VolumeRecord.fetchOne(db, key: id) }
    }

    /// The volume (not snapshot) named `name`, in any state.
    public func volume(named name: String) throws -> VolumeRecord? {
        try writer.read { db in try VolumeRecord.filter(Column("kind") == VolumeRecord.Kind.volume.rawValue && Column("name") == name).fetchOne(db) }
    }

    /// Moves the shard location of one position and queues the old device for cleanup, in
    /// one transaction: the switch the mover makes once every object's shard is copied.
    public func switchLocation(poolID: UInt32, pg: Int, position: Int, from: DeviceID, to: DeviceID, movedBytes: Int64, epoch: Int64) throws {
        try writer.write { db in
            let current = try String.fetchOne(db, sql: "SELECT device FROM shard_location WHERE pool_id = ? AND pg = ? AND position = ?",
                                              arguments: [Int64(poolID), Int64(pg), Int64(position)])
            guard current == from.rawValue else {
                throw MetadataError.corrupt("pool \(poolID) pg \(pg) position \(position) is at \(current ?? "nowhere"), not \(from)")
            }
            try ShardLocationRecord(poolID: Int64(poolID), pg: Int64(pg), position: Int64(position), device: to.rawValue).save(db)
            try CleanupRecord(poolID: Int64(poolID), pg: Int64(pg), position: Int64(position), device: from.rawValue).save(db)
            try db.execute(sql: "UPDATE movement SET done_positions = done_positions + 1, done_bytes = done_bytes + ? WHERE epoch = ?",
                           arguments: [movedBytes, epoch])
        }
    }
}
