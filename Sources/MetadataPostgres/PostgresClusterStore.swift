import Foundation
import Metadata
import Placement
import PostgresNIO

/// The cluster state on PostgreSQL (`--metadata postgres://…`): the same operations,
/// schema and invariants as `ClusterDatabase` on SQLite (its doc comments give each
/// operation's rules), for daemons on several hosts sharing one replicated database.
/// Writes run SERIALIZABLE (`PostgresPool`), which gives what SQLite's single writer gives:
/// a check and the change it allows (a holder letting go of a shared object, a location
/// switched from the device it is on) cannot interleave with another's. Text keys sort by
/// byte (`COLLATE "C"`), as SQLite's do, whatever the database's collation.
public final class PostgresClusterStore: ClusterStore {
    let pool: PostgresPool
    /// nil: a node's store (`controller: false`).
    let controllerLock: PostgresControllerLock?
    /// Volumes' namespaces and leases, in the same database.
    public let namespaces: PostgresNamespaceStore
    public var namespaceStore: (any NamespaceStore)? { namespaces }

    /// Connects, takes the controller lock (`PostgresControllerLock`) and migrates; fails
    /// with the reason if it cannot. `controller: false`: a node's store, which mounts
    /// volumes and records their objects but never changes the map, classes or devices:
    /// no controller lock, so any number of nodes share the database with the controller.
    /// `standby`: a controller that finds another leading waits for the lock, told once why
    /// (nil: it fails at once); `lost`: called if it finds later that another took the lead.
    public init(settings: MetadataLocation.PostgresSettings, controller: Bool = true,
                standby: (@Sendable (String) -> Void)? = nil, lost: (@Sendable () -> Void)? = nil) throws {
        pool = try PostgresPool(settings: settings)
        namespaces = PostgresNamespaceStore(pool: pool)
        if controller {
            let lock = try PostgresControllerLock(pool: pool, standby: standby, lost: lost)
            controllerLock = lock
            pool.beforeWrite = { [weak lock] in try lock?.ensure() }  // weak: the lock holds the pool
        } else {
            controllerLock = nil
        }
        try PostgresMigrations.migrate(pool)
    }

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    // MARK: grouped changes

    public func commit(_ changes: [ClusterChange]) throws {
        try pool.write { session in
            for change in changes { try Self.apply(change, session) }
        }
    }

    static func apply(_ change: ClusterChange, _ s: PostgresPool.Session) throws {
        switch change {
        case .saveClass(let r):
            try s.query("""
                INSERT INTO storage_class (name, pool_id, definition, created_ms) VALUES ($1, $2, $3, $4)
                ON CONFLICT (name) DO UPDATE SET pool_id = excluded.pool_id, definition = excluded.definition, created_ms = excluded.created_ms
                """, [r.name, r.poolID, r.definition, r.createdMs])
        case .deleteClass(let name):
            let used = try s.query("SELECT EXISTS (SELECT 1 FROM volume WHERE class_name = $1)", [name])
            if try used.first?.decode(Bool.self) == true { throw MetadataError.inUse("storage class \"\(name)\" (volumes use it)") }
            try s.query("DELETE FROM storage_class WHERE name = $1", [name])
        case .saveDevice(let r):
            try s.query("""
                INSERT INTO device (id, path, capacity_bytes, host, rack, zone, added_ms, agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (id) DO UPDATE SET path = excluded.path, capacity_bytes = excluded.capacity_bytes, host = excluded.host,
                    rack = excluded.rack, zone = excluded.zone, added_ms = excluded.added_ms, agent = excluded.agent
                """) { b in
                try b.append(r.id); try b.append(r.path); try b.append(r.capacityBytes); try b.append(r.host)
                try b.append(r.rack); try b.append(r.zone); try b.append(r.addedMs); try b.append(r.agent)
            }
        case .deleteDevice(let id):
            try s.query("DELETE FROM device WHERE id = $1", [id])
        case .setHealthMark(let device, let state?):
            try s.query("INSERT INTO health_mark (device, state) VALUES ($1, $2) ON CONFLICT (device) DO UPDATE SET state = excluded.state",
                        [device, state])
        case .setHealthMark(let device, nil):
            try s.query("DELETE FROM health_mark WHERE device = $1", [device])
        case .startMaintenance(let device, let started, let until):
            try s.query("""
                INSERT INTO maintenance (device, started_ms, until_ms) VALUES ($1, $2, $3)
                ON CONFLICT (device) DO UPDATE SET until_ms = excluded.until_ms
                """) { b in try b.append(device); try b.append(started); try b.append(until) }
        case .endMaintenance(let device):
            try s.query("DELETE FROM maintenance WHERE device = $1", [device])
        case .insertMap(let map):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = String(decoding: try encoder.encode(map), as: UTF8.self)
            try s.query("INSERT INTO cluster_map (epoch, map, created_ms) VALUES ($1, $2, $3)", [Int64(map.epoch), json, now()])
        case .setLocations(let poolID, let table):
            try s.query("DELETE FROM shard_location WHERE pool_id = $1", [Int64(poolID)])
            var pgs: [Int64] = [], positions: [Int64] = [], devices: [String] = []
            for pg in 0..<table.pgCount {
                for (position, device) in table[pg].enumerated() {
                    pgs.append(Int64(pg)); positions.append(Int64(position)); devices.append(device.rawValue)
                }
            }
            // One statement for the whole table (thousands of rows).
            try s.query("""
                INSERT INTO shard_location (pool_id, pg, position, device)
                SELECT $1, * FROM unnest($2::BIGINT[], $3::BIGINT[], $4::TEXT[])
                """, [Int64(poolID), pgs, positions, devices])
        case .setLocation(let r):
            try s.query("""
                INSERT INTO shard_location (pool_id, pg, position, device) VALUES ($1, $2, $3, $4)
                ON CONFLICT (pool_id, pg, position) DO UPDATE SET device = excluded.device
                """, [r.poolID, r.pg, r.position, r.device])
        case .addCleanup(let r):
            try s.query("INSERT INTO cleanup (pool_id, pg, position, device) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        [r.poolID, r.pg, r.position, r.device])
        case .removeCleanup(let r):
            try s.query("DELETE FROM cleanup WHERE pool_id = $1 AND pg = $2 AND position = $3 AND device = $4",
                        [r.poolID, r.pg, r.position, r.device])
        case .startMovement(let r):
            try s.query("""
                INSERT INTO movement (epoch, total_positions, total_bytes, done_positions, done_bytes, started_ms, finished_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (epoch) DO UPDATE SET total_positions = excluded.total_positions, total_bytes = excluded.total_bytes,
                    done_positions = excluded.done_positions, done_bytes = excluded.done_bytes, started_ms = excluded.started_ms,
                    finished_ms = excluded.finished_ms
                """) { b in
                try b.append(r.epoch); try b.append(r.totalPositions); try b.append(r.totalBytes); try b.append(r.donePositions)
                try b.append(r.doneBytes); try b.append(r.startedMs); try b.append(r.finishedMs)
            }
        case .saveVolume(let r):
            try saveVolume(r, s, insert: true)
        case .deleteVolume(let id):
            try s.query("DELETE FROM volume WHERE id = $1", [id])
        case .saveUsage(let usage):
            try saveUsage(usage, s)
        case .clearInUse(let id):
            try s.query("DELETE FROM volume_in_use WHERE volume_id = $1", [id])
        }
    }

    static func saveVolume(_ r: VolumeRecord, _ s: PostgresPool.Session, insert: Bool) throws {
        let bind: (inout PostgresBindings) throws -> Void = { b in
            try b.append(r.id); try b.append(r.name); try b.append(r.className); try b.append(r.capacityBytes)
            try b.append(r.state.rawValue); try b.append(r.parameters); try b.append(r.createdMs); try b.append(r.kind.rawValue)
            try b.append(r.source)
        }
        if insert {
            try s.query("""
                INSERT INTO volume (id, name, class_name, capacity_bytes, state, parameters, created_ms, kind, source)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, class_name = excluded.class_name,
                    capacity_bytes = excluded.capacity_bytes, state = excluded.state, parameters = excluded.parameters,
                    created_ms = excluded.created_ms, kind = excluded.kind, source = excluded.source
                """, binding: bind)
        } else {
            try s.query("""
                UPDATE volume SET name = $2, class_name = $3, capacity_bytes = $4, state = $5, parameters = $6, created_ms = $7,
                    kind = $8, source = $9 WHERE id = $1
                """, binding: bind)
        }
    }

    static func saveUsage(_ usage: VolumeUsageRecord, _ s: PostgresPool.Session) throws {
        try s.query("""
            INSERT INTO volume_usage (volume_id, stored_bytes, live_bytes)
            SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM volume WHERE id = $1)
            ON CONFLICT (volume_id) DO UPDATE SET stored_bytes = excluded.stored_bytes, live_bytes = excluded.live_bytes
            """, [usage.volumeID, usage.storedBytes, usage.liveBytes])
    }

    // MARK: reads

    static let volumeColumns = "id, name, class_name, capacity_bytes, state, parameters, created_ms, kind, source"

    static func volume(_ row: PostgresRow) throws -> VolumeRecord {
        let (id, name, className, capacity, state, parameters, created, kind, source) =
            try row.decode((String, String, String, Int64, String, String, Int64, String, String?).self)
        guard let state = VolumeRecord.State(rawValue: state), let kind = VolumeRecord.Kind(rawValue: kind) else {
            throw MetadataError.corrupt("volume \(id): state \(state), kind \(kind)")
        }
        return VolumeRecord(id: id, name: name, className: className, capacityBytes: capacity, state: state, parameters: parameters,
                            createdMs: created, kind: kind, source: source)
    }

    public func classes() throws -> [StorageClassRecord] {
        try pool.read { s in
            try s.query("SELECT name, pool_id, definition, created_ms FROM storage_class ORDER BY pool_id").map {
                let (name, poolID, definition, created) = try $0.decode((String, Int64, String, Int64).self)
                return StorageClassRecord(name: name, poolID: poolID, definition: definition, createdMs: created)
            }
        }
    }

    public func devices() throws -> [DeviceRecord] {
        try pool.read { s in
            try s.query("SELECT id, path, capacity_bytes, host, rack, zone, added_ms, agent FROM device ORDER BY id COLLATE \"C\"").map {
                let (id, path, capacity, host, rack, zone, added, agent) =
                    try $0.decode((String, String, Int64, String, String?, String?, Int64, String?).self)
                return DeviceRecord(id: id, path: path, capacityBytes: capacity, host: host, rack: rack, zone: zone, addedMs: added, agent: agent)
            }
        }
    }

    public func maintenance() throws -> [(device: String, startedMs: Int64, untilMs: Int64?)] {
        try pool.read { s in
            try s.query("SELECT device, started_ms, until_ms FROM maintenance ORDER BY device COLLATE \"C\"").map {
                let (device, started, until) = try $0.decode((String, Int64, Int64?).self)
                return (device, started, until)
            }
        }
    }

    public func healthMarks() throws -> [String: String] {
        try pool.read { s in
            Dictionary(try s.query("SELECT device, state FROM health_mark").map { try $0.decode((String, String).self) },
                       uniquingKeysWith: { a, _ in a })
        }
    }

    public func latestMap() throws -> ClusterMap? {
        try pool.read { s in
            guard let json = try s.query("SELECT map FROM cluster_map ORDER BY epoch DESC LIMIT 1").first?.decode(String.self) else { return nil }
            do { return try JSONDecoder().decode(ClusterMap.self, from: Data(json.utf8)) } catch {
                throw MetadataError.corrupt("latest cluster map does not decode: \(error)")
            }
        }
    }

    public func epochs() throws -> [UInt64] {
        try pool.read { s in try s.query("SELECT epoch FROM cluster_map ORDER BY epoch").map { UInt64(try $0.decode(Int64.self)) } }
    }

    public func locations(poolID: UInt32) throws -> [[DeviceID]] {
        try pool.read { s in
            var result: [[DeviceID]] = []
            for row in try s.query("SELECT pg, device FROM shard_location WHERE pool_id = $1 ORDER BY pg, position", [Int64(poolID)]) {
                let (pg, device) = try row.decode((Int64, String).self)
                while result.count <= Int(pg) { result.append([]) }
                result[Int(pg)].append(DeviceID(device))
            }
            return result
        }
    }

    public func cleanups() throws -> [CleanupRecord] {
        try pool.read { s in
            try s.query("SELECT pool_id, pg, position, device FROM cleanup ORDER BY pool_id, pg, position, device COLLATE \"C\"").map {
                let (poolID, pg, position, device) = try $0.decode((Int64, Int64, Int64, String).self)
                return CleanupRecord(poolID: poolID, pg: pg, position: position, device: device)
            }
        }
    }

    public func latestMovement() throws -> MovementRecord? {
        try pool.read { s in
            try s.query("""
                SELECT epoch, total_positions, total_bytes, done_positions, done_bytes, started_ms, finished_ms
                FROM movement ORDER BY epoch DESC LIMIT 1
                """).first.map {
                let (epoch, positions, bytes, donePositions, doneBytes, started, finished) =
                    try $0.decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64?).self)
                return MovementRecord(epoch: epoch, totalPositions: positions, totalBytes: bytes, donePositions: donePositions,
                                      doneBytes: doneBytes, startedMs: started, finishedMs: finished)
            }
        }
    }

    public func recordProgress(epoch: Int64, positions: Int64, bytes: Int64, finished: Bool) throws {
        try pool.write { s in
            try s.query("""
                UPDATE movement SET done_positions = done_positions + $1, done_bytes = done_bytes + $2,
                    finished_ms = CASE WHEN $3 THEN $4 ELSE finished_ms END
                WHERE epoch = $5
                """, [positions, bytes, finished, Self.now(), epoch])
        }
    }

    public func switchLocation(poolID: UInt32, pg: Int, position: Int, from: DeviceID, to: DeviceID, movedBytes: Int64, epoch: Int64) throws {
        try pool.write { s in
            let key: [any PostgresThrowingDynamicTypeEncodable & Sendable] = [Int64(poolID), Int64(pg), Int64(position)]
            let current = try s.query("SELECT device FROM shard_location WHERE pool_id = $1 AND pg = $2 AND position = $3 FOR UPDATE", key)
                .first?.decode(String.self)
            guard current == from.rawValue else {
                throw MetadataError.corrupt("pool \(poolID) pg \(pg) position \(position) is at \(current ?? "nowhere"), not \(from)")
            }
            try s.query("UPDATE shard_location SET device = $4 WHERE pool_id = $1 AND pg = $2 AND position = $3", key + [to.rawValue])
            try s.query("INSERT INTO cleanup (pool_id, pg, position, device) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", key + [from.rawValue])
            try s.query("UPDATE movement SET done_positions = done_positions + 1, done_bytes = done_bytes + $1 WHERE epoch = $2",
                        [movedBytes, epoch])
        }
    }

    // MARK: volumes and snapshots

    public func volumes() throws -> [VolumeRecord] {
        try pool.read { s in try s.query("SELECT \(Self.volumeColumns) FROM volume ORDER BY created_ms, id COLLATE \"C\"").map(Self.volume) }
    }

    public func volumes(after: String?, limit: Int?) throws -> [VolumeRecord] {
        try page(kind: .volume, after: after, limit: limit, source: nil)
    }

    public func snapshots(after: String?, limit: Int?, sourceVolume: String?) throws -> [VolumeRecord] {
        try page(kind: .snapshot, after: after, limit: limit, source: sourceVolume.map { "volume:" + $0 })
    }

    private func page(kind: VolumeRecord.Kind, after: String?, limit: Int?, source: String?) throws -> [VolumeRecord] {
        try pool.read { s in
            try s.query("""
                SELECT \(Self.volumeColumns) FROM volume
                WHERE state = 'available' AND kind = $1 AND ($2::TEXT IS NULL OR id COLLATE "C" > $2) AND ($3::TEXT IS NULL OR source = $3)
                ORDER BY id COLLATE "C" LIMIT $4
                """) { b in
                try b.append(kind.rawValue); try b.append(after); try b.append(source); try b.append(limit.map(Int64.init))
            }.map(Self.volume)
        }
    }

    public func volumeCounts() throws -> [String: Int] {
        try pool.read { s in
            var result: [String: Int] = [:]
            for row in try s.query("SELECT class_name, COUNT(*) FROM volume WHERE kind = 'volume' GROUP BY class_name") {
                let (name, count) = try row.decode((String, Int64).self)
                result[name] = Int(count)
            }
            return result
        }
    }

    public func volume(id: String) throws -> VolumeRecord? {
        try pool.read { s in try s.query("SELECT \(Self.volumeColumns) FROM volume WHERE id = $1", [id]).first.map(Self.volume) }
    }

    public func volume(named name: String) throws -> VolumeRecord? {
        try pool.read { s in try s.query("SELECT \(Self.volumeColumns) FROM volume WHERE kind = 'volume' AND name = $1", [name]).first.map(Self.volume) }
    }

    public func snapshot(named name: String) throws -> VolumeRecord? {
        try pool.read { s in try s.query("SELECT \(Self.volumeColumns) FROM volume WHERE kind = 'snapshot' AND name = $1", [name]).first.map(Self.volume) }
    }

    // MARK: the object index

    static func indexed(_ row: PostgresRow) throws -> IndexedObject {
        let (id, poolID, pg, volumeID, size, shard) = try row.decode((String, Int64, Int64, String, Int64, Int64).self)
        return IndexedObject(id: id, poolID: poolID, pg: pg, volumeID: volumeID, sizeBytes: size, shardBytes: shard)
    }

    static let indexedColumns = "object_id, pool_id, pg, volume_id, size_bytes, shard_bytes"

    /// Adds objects of volumes that exist, in one statement: for an id given twice, the
    /// last add whose volume exists wins, as one INSERT OR REPLACE after another would.
    static func addIndexed(_ batch: [IndexedObject], _ s: PostgresPool.Session) throws {
        guard !batch.isEmpty else { return }
        try s.query("""
            INSERT INTO pg_object (object_id, pool_id, pg, volume_id, size_bytes, shard_bytes)
            SELECT DISTINCT ON (n.object_id) n.object_id, n.pool_id, n.pg, n.volume_id, n.size_bytes, n.shard_bytes
            FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[]) WITH ORDINALITY
                AS n(object_id, pool_id, pg, volume_id, size_bytes, shard_bytes, ord)
            WHERE EXISTS (SELECT 1 FROM volume v WHERE v.id = n.volume_id)
            ORDER BY n.object_id, n.ord DESC
            ON CONFLICT (object_id) DO UPDATE SET pool_id = excluded.pool_id, pg = excluded.pg, volume_id = excluded.volume_id,
                size_bytes = excluded.size_bytes, shard_bytes = excluded.shard_bytes
            """, [batch.map(\.id), batch.map(\.poolID), batch.map(\.pg), batch.map(\.volumeID), batch.map(\.sizeBytes), batch.map(\.shardBytes)])
    }

    public func applyIndex(_ changes: [ObjectIndexChange]) throws {
        guard !changes.isEmpty else { return }
        try pool.write { s in
            // Runs of adds and of removes, in order (one statement per run).
            var adds: [IndexedObject] = [], removes: [String] = []
            func flush() throws {
                try Self.addIndexed(adds, s)
                if !removes.isEmpty { try s.query("DELETE FROM pg_object WHERE object_id = ANY($1)", [removes]) }
                adds = []; removes = []
            }
            for change in changes {
                switch change {
                case .add(let o):
                    if !removes.isEmpty { try flush() }
                    adds.append(o)
                case .remove(let id):
                    if !adds.isEmpty { try flush() }
                    removes.append(id)
                }
            }
            try flush()
        }
    }

    public func replaceIndex(volumeID: String, objects: [IndexedObject], usage: VolumeUsageRecord?, keepInUse: Bool) throws {
        try pool.write { s in
            try s.query("DELETE FROM pg_object WHERE volume_id = $1", [volumeID])
            try Self.addIndexed(objects.filter { $0.volumeID == volumeID }, s)
            if let usage { try Self.saveUsage(usage, s) }
            if !keepInUse { try s.query("DELETE FROM volume_in_use WHERE volume_id = $1", [volumeID]) }
        }
    }

    public func indexedObjects(poolID: UInt32, pg: Int) throws -> [IndexedObject] {
        try pool.read { s in
            try s.query("SELECT \(Self.indexedColumns) FROM pg_object WHERE pool_id = $1 AND pg = $2 ORDER BY object_id COLLATE \"C\"",
                        [Int64(poolID), Int64(pg)]).map(Self.indexed)
        }
    }

    public func indexedObject(id: String) throws -> IndexedObject? {
        try pool.read { s in try s.query("SELECT \(Self.indexedColumns) FROM pg_object WHERE object_id = $1", [id]).first.map(Self.indexed) }
    }

    public func positionBytes(poolID: UInt32) throws -> [Int: Int64] {
        try pool.read { s in
            var result: [Int: Int64] = [:]
            for row in try s.query("SELECT pg, SUM(shard_bytes)::BIGINT FROM pg_object WHERE pool_id = $1 GROUP BY pg", [Int64(poolID)]) {
                let (pg, bytes) = try row.decode((Int64, Int64).self)
                result[Int(pg)] = bytes
            }
            return result
        }
    }

    public func poolHasObjects(poolID: UInt32) throws -> Bool {
        try pool.read { s in
            try s.query("SELECT EXISTS (SELECT 1 FROM pg_object WHERE pool_id = $1)", [Int64(poolID)]).first?.decode(Bool.self) ?? false
        }
    }

    public func indexedObjectCount(poolID: UInt32, pgs: Set<Int>) throws -> Int {
        guard !pgs.isEmpty else { return 0 }
        return try pool.read { s in
            Int(try s.query("SELECT COUNT(*) FROM pg_object WHERE pool_id = $1 AND pg = ANY($2)", [Int64(poolID), pgs.map(Int64.init)])
                .first?.decode(Int64.self) ?? 0)
        }
    }

    public func markInUse(volumeID: String) throws {
        try pool.write { s in
            try s.query("INSERT INTO volume_in_use (volume_id) SELECT id FROM volume WHERE id = $1 ON CONFLICT DO NOTHING", [volumeID])
        }
    }

    public func volumesInUse() throws -> [String] {
        try pool.read { s in try s.query("SELECT volume_id FROM volume_in_use ORDER BY volume_id COLLATE \"C\"").map { try $0.decode(String.self) } }
    }

    public func usages() throws -> [VolumeUsageRecord] {
        try pool.read { s in
            try s.query("SELECT volume_id, stored_bytes, live_bytes FROM volume_usage ORDER BY volume_id COLLATE \"C\"").map {
                let (id, stored, live) = try $0.decode((String, Int64, Int64).self)
                return VolumeUsageRecord(volumeID: id, storedBytes: stored, liveBytes: live)
            }
        }
    }

    // MARK: shared objects

    public func finishCopy(_ record: VolumeRecord, sharing objects: [String], with sourceID: String, usage: VolumeUsageRecord,
                           copyData: Bool) throws {
        try pool.write { s in
            let state = try s.query("SELECT state FROM volume WHERE id = $1 FOR UPDATE", [record.id]).first?.decode(String.self)
            guard state == VolumeRecord.State.creating.rawValue else {
                throw MetadataError.notFound("\(record.kind.rawValue) \(record.id) being made")
            }
            if copyData { try s.query("INSERT INTO clone_copy (volume_id) VALUES ($1) ON CONFLICT DO NOTHING", [record.id]) }
            if !objects.isEmpty {
                try s.query("""
                    INSERT INTO object_holder (object_id, holder)
                    SELECT o, h FROM unnest($1::TEXT[]) AS o CROSS JOIN (VALUES ($2), ($3)) AS x(h)
                    ON CONFLICT DO NOTHING
                    """, [objects, sourceID, record.id])
            }
            try s.query("INSERT INTO sharing_holder (volume_id) VALUES ($1), ($2) ON CONFLICT DO NOTHING", [sourceID, record.id])
            try Self.saveVolume(record, s, insert: false)
            try Self.saveUsage(usage, s)
        }
    }

    public func cloneCopies() throws -> [String] {
        try pool.read { s in try s.query("SELECT volume_id FROM clone_copy ORDER BY volume_id COLLATE \"C\"").map { try $0.decode(String.self) } }
    }

    public func finishCloneCopy(volumeID: String) throws {
        try pool.write { s in try s.query("DELETE FROM clone_copy WHERE volume_id = $1", [volumeID]) }
    }

    public func sharingHolders() throws -> Set<String> {
        try pool.read { s in Set(try s.query("SELECT volume_id FROM sharing_holder").map { try $0.decode(String.self) }) }
    }

    public func release(_ objects: [String], holder: String) throws -> Set<String> {
        if objects.isEmpty { return [] }
        return try pool.write { s in
            // Those another namespace still holds: their index entries pass to one of them.
            let kept = Set(try s.query("""
                SELECT DISTINCT object_id FROM object_holder WHERE object_id = ANY($1) AND holder <> $2
                """, [objects, holder]).map { try $0.decode(String.self) })
            if !kept.isEmpty {
                try s.query("""
                    UPDATE pg_object p SET volume_id = (SELECT h.holder FROM object_holder h WHERE h.object_id = p.object_id AND h.holder <> $2
                                                        ORDER BY h.holder COLLATE "C" LIMIT 1)
                    WHERE p.object_id = ANY($1) AND p.volume_id = $2
                    """, [Array(kept), holder])
            }
            try s.query("DELETE FROM object_holder WHERE object_id = ANY($1) AND holder = $2", [objects, holder])
            return kept
        }
    }

    public func deleteHolder(id: String) throws {
        try pool.write { s in
            try s.query("""
                UPDATE pg_object p SET volume_id = (SELECT h.holder FROM object_holder h WHERE h.object_id = p.object_id AND h.holder <> $1
                                                    ORDER BY h.holder COLLATE "C" LIMIT 1)
                WHERE p.volume_id = $1 AND EXISTS (SELECT 1 FROM object_holder h WHERE h.object_id = p.object_id AND h.holder <> $1)
                """, [id])
            try s.query("DELETE FROM volume WHERE id = $1", [id])
        }
    }

    public func sharedCorrection(poolID: UInt32) throws -> (shardBytes: Int64, sizeBytes: Int64) {
        try pool.read { s in
            let row = try s.query("""
                SELECT COALESCE(SUM(p.shard_bytes * (1 - s.volumes)), 0)::BIGINT, COALESCE(SUM(p.size_bytes * (1 - s.volumes)), 0)::BIGINT
                FROM (SELECT h.object_id, SUM(CASE WHEN v.kind = 'volume' THEN 1 ELSE 0 END) AS volumes
                      FROM object_holder h JOIN volume v ON v.id = h.holder GROUP BY h.object_id) s
                JOIN pg_object p ON p.object_id = s.object_id
                WHERE p.pool_id = $1
                """, [Int64(poolID)]).first
            return try row.map { try $0.decode((Int64, Int64).self) } ?? (0, 0)
        }
    }

    // MARK: PGs to recover

    public func markForRecovery(poolID: UInt32, pg: Int) throws {
        try pool.write { s in
            try s.query("""
                INSERT INTO pg_recovery (pool_id, pg, generation) VALUES ($1, $2, 0)
                ON CONFLICT (pool_id, pg) DO UPDATE SET generation = pg_recovery.generation + 1
                """, [Int64(poolID), Int64(pg)])
        }
    }

    public func pgsNeedingRecovery() throws -> [(poolID: UInt32, pg: Int, generation: Int64)] {
        try pool.read { s in
            try s.query("SELECT pool_id, pg, generation FROM pg_recovery ORDER BY pool_id, pg").map {
                let (poolID, pg, generation) = try $0.decode((Int64, Int64, Int64).self)
                return (UInt32(poolID), Int(pg), generation)
            }
        }
    }

    @discardableResult
    public func clearRecovery(poolID: UInt32, pg: Int, generation: Int64?) throws -> Bool {
        try pool.write { s in
            try s.execute("DELETE FROM pg_recovery WHERE pool_id = $1 AND pg = $2 AND ($3::BIGINT IS NULL OR generation = $3)") { b in
                try b.append(Int64(poolID)); try b.append(Int64(pg)); try b.append(generation)
            } > 0
        }
    }
}
