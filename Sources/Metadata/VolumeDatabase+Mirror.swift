import Foundation
import GRDB

/// A volume database whose namespace a `NamespaceStore` keeps (`NamespaceMirror` has the
/// design): opening under the lease, recording changed keys, shipping, restoring.
extension VolumeDatabase {
    /// Takes the volume's lease (waiting up to `acquireWait` for another holder's to run
    /// out), makes the local copy the store's if another node shipped since this database
    /// last matched it, and starts recording changes. Runs once, from `init`.
    func openMirror(_ mirror: NamespaceMirror) throws {
        let settings = mirror.settings
        let lease = try Self.acquire(settings, volumeID: volumeID)
        mirror.setLease(lease)
        // Renewed from now on: loading and restoring a large copy must not let it lapse.
        mirror.startRenewal { [weak self] in self?.renewLease() }
        let local = try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT version, generation FROM mirror_state WHERE id = 1").map { (version: $0[0] as Int64, generation: $0[1] as Int64) }
        } ?? (0, 0)
        if lease.version == 0 && local.version == 0 {
            // Never shipped: everything here is to ship (a volume made before it was mirrored).
            try transaction { db in
                for table in NamespaceTable.allCases {
                    let keys = table.keyColumns.map(\.name)
                    try db.execute(sql: "INSERT INTO mirror_change (tbl, k1, k2) SELECT \(table.rawValue), \(keys[0]), \(keys.count > 1 ? keys[1] : "NULL") FROM \(table.sqliteName)")
                }
            }
        } else if local.version != lease.version || local.generation != lease.shippedGeneration {
            let image = try settings.store.load(volumeID: volumeID)
            try restore(image, generation: lease.shippedGeneration)
            mirror.restored = true
            mirror.writtenElsewhere = local.generation != lease.shippedGeneration
        }
        try writer.writeWithoutTransaction { db in try Self.installTriggers(db) }
        scheduleShipment()
    }

    private static func acquire(_ settings: NamespaceMirror.Settings, volumeID: String) throws -> NamespaceLease {
        let deadline = ContinuousClock.now + settings.acquireWait
        while true {
            do {
                return try settings.store.acquireLease(volumeID: volumeID, holder: settings.holder, ttl: settings.ttl)
            } catch let held as NamespaceLeaseHeld {
                let now = ContinuousClock.now
                if now >= deadline { throw held }
                let pause = min(max(held.remainingSeconds, 0.05), 1.0, (deadline - now).seconds)
                usleep(UInt32(pause * 1_000_000))
            }
        }
    }

    /// Replaces every mirrored row with the image's, in one transaction.
    func restore(_ image: NamespaceImage, generation: Int64) throws {
        try transaction { db in
            try db.execute(sql: "DELETE FROM mirror_change")
            for table in NamespaceTable.allCases.reversed() { try db.execute(sql: "DELETE FROM \(table.sqliteName)") }
            for table in NamespaceTable.allCases {
                let columns = table.columns
                let statement = try db.makeStatement(sql: """
                    INSERT INTO \(table.sqliteName) (\(columns.map(\.name).joined(separator: ", ")))
                    VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))
                    """)
                for row in image.rows[table] ?? [] {
                    try statement.execute(arguments: StatementArguments(row.map(\.databaseValue)))
                }
            }
            try db.execute(sql: "UPDATE mirror_state SET version = ?, generation = ? WHERE id = 1", arguments: [image.version, generation])
        }
        nextIno.withLock { $0 = nil }
    }

    /// Triggers on this connection only (TEMP): every insert, update and delete of a
    /// mirrored table records the row's key (and a key an update moved away from).
    static func installTriggers(_ db: Database) throws {
        for table in NamespaceTable.allCases {
            let name = table.sqliteName
            let keys = table.keyColumns.map(\.name)
            func values(_ row: String) -> String {
                "\(table.rawValue), \(row).\(keys[0]), \(keys.count > 1 ? "\(row).\(keys[1])" : "NULL")"
            }
            let keyMoved = keys.map { "OLD.\($0) IS NOT NEW.\($0)" }.joined(separator: " OR ")
            try db.execute(sql: """
                CREATE TEMP TRIGGER IF NOT EXISTS mirror_\(name)_insert AFTER INSERT ON main.\(name)
                BEGIN INSERT INTO mirror_change (tbl, k1, k2) VALUES (\(values("NEW"))); END;
                CREATE TEMP TRIGGER IF NOT EXISTS mirror_\(name)_update AFTER UPDATE ON main.\(name)
                BEGIN INSERT INTO mirror_change (tbl, k1, k2) VALUES (\(values("NEW"))); END;
                CREATE TEMP TRIGGER IF NOT EXISTS mirror_\(name)_rekey AFTER UPDATE ON main.\(name) WHEN \(keyMoved)
                BEGIN INSERT INTO mirror_change (tbl, k1, k2) VALUES (\(values("OLD"))); END;
                CREATE TEMP TRIGGER IF NOT EXISTS mirror_\(name)_delete AFTER DELETE ON main.\(name)
                BEGIN INSERT INTO mirror_change (tbl, k1, k2) VALUES (\(values("OLD"))); END;
                """)
        }
    }

    /// The changes recorded up to the newest, as one committed snapshot has them: the rows
    /// as they stand, and the keys of rows that are gone. nil: nothing to ship.
    func collectChanges() throws -> (throughSeq: Int64, changes: NamespaceChanges)? {
        try writer.read { db in
            guard let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM mirror_change") else { return nil }
            var changes = NamespaceChanges()
            for table in NamespaceTable.allCases {
                let keys = table.keyColumns.map(\.name)
                let changed = "SELECT DISTINCT k1, k2 FROM mirror_change WHERE tbl = \(table.rawValue) AND seq <= ?"
                let match = keys.count > 1 ? "t.\(keys[0]) = c.k1 AND t.\(keys[1]) = c.k2" : "t.\(keys[0]) = c.k1"
                let present = try Row.fetchAll(db, sql: """
                    SELECT \(table.columns.map { "t.\($0.name)" }.joined(separator: ", "))
                    FROM (\(changed)) c JOIN \(table.sqliteName) t ON \(match)
                    """, arguments: [last])
                let gone = try Row.fetchAll(db, sql: """
                    SELECT c.k1, c.k2 FROM (\(changed)) c
                    WHERE NOT EXISTS (SELECT 1 FROM \(table.sqliteName) t WHERE \(match))
                    """, arguments: [last])
                if !present.isEmpty { changes.upserts[table] = present.map { row in table.columns.indices.map { NamespaceValue(row[$0] as DatabaseValue) } } }
                if !gone.isEmpty { changes.deletions[table] = gone.map { row in (0..<keys.count).map { NamespaceValue(row[$0] as DatabaseValue) } } }
            }
            return (last, changes)
        }
    }

    /// Ships what changed since the last shipment, now (an fsync's: it returns once the
    /// store has it). Fenced: EIO, for good. A store that cannot be reached: EIO for this
    /// call; the changes stay recorded for the next shipment.
    public func shipNamespace() throws(FSError) {
        guard let mirror else { return }
        do { try ship(mirror) } catch { throw .io }
    }

    private func ship(_ mirror: NamespaceMirror) throws {
        mirror.shipping.lock()
        defer { mirror.shipping.unlock() }
        guard let lease = mirror.lease, !mirror.isFenced else { throw NamespaceFenced(volumeID: volumeID, generation: mirror.lease?.generation ?? 0) }
        guard let (last, changes) = try collectChanges() else { return }
        let version: Int64
        do {
            version = try mirror.settings.store.ship(lease, changes)
        } catch let fenced as NamespaceFenced {
            mirror.fence()
            throw fenced
        }
        try transaction { db in
            try db.execute(sql: "DELETE FROM mirror_change WHERE seq <= ?", arguments: [last])
            try db.execute(sql: "UPDATE mirror_state SET version = ?, generation = ? WHERE id = 1", arguments: [version, lease.generation])
        }
    }

    /// A shipment `shipDelay` from now, unless one is already due (after every commit).
    func scheduleShipment() {
        guard let mirror, mirror.claimShipment() else { return }
        mirror.queue.asyncAfter(deadline: .now() + mirror.settings.shipDelay.dispatchInterval) { [weak self] in
            mirror.shipmentStarted()
            guard let self else { return }
            do { try self.ship(mirror) } catch is NamespaceFenced { return } catch {
                // The store did not answer: try again a little later.
                mirror.queue.asyncAfter(deadline: .now() + .seconds(1)) { [weak self] in self?.scheduleShipment() }
            }
        }
    }

    private func renewLease() {
        guard let mirror, let lease = mirror.lease, !mirror.isFenced, !mirror.isClosed else { return }
        do { try mirror.settings.store.renewLease(lease, ttl: mirror.settings.ttl) } catch is NamespaceFenced {
            mirror.fence()
        } catch {}  // unreachable store: the next renewal tries again
    }

    /// Ships what is left and, `release`, gives the lease up (the volume's last mount here
    /// ended). If the shipment fails, nothing is closed: the lease is still renewed and
    /// shipments retried, and the call fails (the caller tries again later).
    public func closeMirror(release: Bool = true) throws {
        guard let mirror else { return }
        try commitNamespaceChanges()
        try ship(mirror)
        if let lease = mirror.close(), release { try mirror.settings.store.releaseLease(lease) }
    }
}

extension NamespaceValue {
    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let v): self = .int(v)
        case .double(let v): self = .int(Int64(v))
        case .string(let v): self = .text(v)
        case .blob(let v): self = .blob(v)
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .int(let v): v.databaseValue
        case .blob(let v): v.databaseValue
        case .text(let v): v.databaseValue
        }
    }
}
